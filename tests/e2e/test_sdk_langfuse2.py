"""The langfuse 2.x SDK (ingestion API) against a real Lightfuse server, read back through the public API."""

from __future__ import annotations

import json
import subprocess

import httpx
import pytest

from tests.conftest import ROOT, client_python

pytestmark = pytest.mark.slow


def run_client(server, script: str) -> dict:
    env = {
        "LANGFUSE_HOST": server.url,
        "LANGFUSE_PUBLIC_KEY": server.public_key,
        "LANGFUSE_SECRET_KEY": server.secret_key,
        "PATH": "/usr/bin:/bin",
    }
    out = subprocess.run(
        [client_python("langfuse2"), str(ROOT / "tests" / "clients" / "scripts" / script)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_sdk2_traces_are_read_back_with_cost(server):
    ids = run_client(server, "langfuse2_trace.py")
    # no sleep: an acknowledged event is readable at once
    r = httpx.get(f"{server.url}/api/public/traces/{ids['trace_id']}", auth=server.auth)
    assert r.status_code == 200, r.text
    trace = r.json()
    assert trace["name"] == "support-chat"
    assert trace["userId"] == "user-42" and trace["sessionId"] == "session-7"
    assert sorted(trace["tags"]) == ["chat", "prod"]
    assert trace["metadata"]["tenant"] == "acme" and trace["metadata"]["resolved"] is True
    assert trace["input"] == {"question": "What is Lightfuse?"}
    assert trace["output"] == {"answer": "A small Langfuse-compatible server."}
    assert trace["release"] == "1.2.3" and trace["version"] == "v9"

    observations = {o["id"]: o for o in trace["observations"]}
    assert set(observations) >= {ids["span_id"], ids["generation_id"], ids["failed_id"]}
    gen = observations[ids["generation_id"]]
    assert gen["type"] == "GENERATION" and gen["model"] == "gpt-4o"
    assert gen["parentObservationId"] == ids["span_id"]
    assert gen["usageDetails"] == {"input": 1000, "output": 200, "total": 1200}
    # gpt-4o built-in price: 2.5e-6 per input token, 1e-5 per output token; the SDK sent no cost
    assert gen["costDetails"]["input"] == pytest.approx(0.0025)
    assert gen["costDetails"]["output"] == pytest.approx(0.002)
    assert gen["calculatedTotalCost"] == pytest.approx(0.0045)
    # the 2.x SDK sends model parameters as strings (its MapValue type has no float)
    assert float(gen["modelParameters"]["temperature"]) == 0.2
    events = [o for o in trace["observations"] if o["type"] == "EVENT"]
    assert events and events[0]["name"] == "cache-miss" and events[0]["parentObservationId"] == ids["span_id"]
    failed = observations[ids["failed_id"]]
    assert failed["level"] == "ERROR" and failed["statusMessage"] == "rate limited"
    assert trace["totalCost"] == pytest.approx(0.0045)

    scores = {s["name"]: s for s in trace["scores"]}
    assert scores["helpfulness"]["value"] == 0.9 and scores["helpfulness"]["comment"] == "good"
    assert scores["correct"]["observationId"] == ids["generation_id"]
    assert scores["correct"]["dataType"] == "BOOLEAN" and scores["correct"]["stringValue"] == "True"
    assert scores["tone"]["stringValue"] == "friendly"

    listed = httpx.get(
        f"{server.url}/api/public/traces", params={"userId": "user-42"}, auth=server.auth
    ).json()
    assert [t["id"] for t in listed["data"]] == [ids["trace_id"]]
    session = httpx.get(f"{server.url}/api/public/sessions/session-7", auth=server.auth).json()
    assert [t["id"] for t in session["traces"]] == [ids["trace_id"]]
