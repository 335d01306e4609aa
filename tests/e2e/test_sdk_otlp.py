"""The OpenTelemetry-based Langfuse SDKs (4.x and 5.x) against a real Lightfuse server.

The same client script (tests/clients/scripts/langfuse_current.py) runs inside each SDK's venv;
the test reads everything back through the public API and checks the tree, types, usage, cost,
trace attributes, error levels and scores.
"""

from __future__ import annotations

import json
import subprocess

import httpx
import pytest

from tests.conftest import ROOT, client_python

pytestmark = pytest.mark.slow

SDKS = ["langfuse4", "langfuse5"]


def run_client(server, venv: str, script: str, base_url_var: str) -> dict:
    env = {
        base_url_var: server.url,
        "LANGFUSE_PUBLIC_KEY": server.public_key,
        "LANGFUSE_SECRET_KEY": server.secret_key,
        "PATH": "/usr/bin:/bin",
    }
    out = subprocess.run(
        [client_python(venv), str(ROOT / "tests" / "clients" / "scripts" / script)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, (out.stdout[-2000:], out.stderr[-4000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("sdk", SDKS)
def test_current_sdk_trace_tree_usage_cost_and_scores(server, sdk):
    # 4.x reads LANGFUSE_HOST as a fallback, 5.x documents LANGFUSE_BASE_URL: use both spellings
    ids = run_client(
        server, sdk, "langfuse_current.py", "LANGFUSE_HOST" if sdk == "langfuse4" else "LANGFUSE_BASE_URL"
    )
    assert ids["major"] == int(sdk[-1])
    trace_id = ids["trace_id"]
    assert len(trace_id) == 32 and int(trace_id, 16)  # OTel ids arrive hex-encoded

    r = httpx.get(f"{server.url}/api/public/traces/{trace_id}", auth=server.auth)
    assert r.status_code == 200, r.text
    trace = r.json()
    assert trace["name"] == "support-chat"
    assert trace["userId"] == "user-42" and trace["sessionId"] == "session-7"
    assert sorted(trace["tags"]) == ["chat", "prod"]
    # 5.x JSON-encodes every metadata value ("123" stays a string, 2 a number); 4.x sends strings raw, and a
    # value that is JSON text reads back parsed (api-semantics 2.4), as on Langfuse
    assert trace["metadata"]["tenant"] == "acme"
    assert trace["metadata"]["build"] == ("123" if ids["major"] >= 5 else 123)
    if ids["major"] == 4:
        # set_current_trace_io
        assert trace["input"] == {"question": "What is Lightfuse?"}
        assert trace["output"] == {"answer": "A small Langfuse-compatible server."}
    else:
        # 5.x has no trace IO: the trace shows the root observation's, i.e. @observe's captured call
        assert "What is Lightfuse?" in json.dumps(trace["input"])
        assert trace["output"] == {"answer": "A small Langfuse-compatible server."}

    obs = {o["id"]: o for o in trace["observations"]}
    names = {o["name"]: o for o in trace["observations"]}
    expected_names = {
        "pipeline",
        "retrieve",
        "search-index",
        "summarise",
        "rerank",
        "failing-tool",
        "ctx-error",
        "explicit-error",
    }
    assert set(names) == expected_names, sorted(names)
    assert len(obs) == len(expected_names)
    for o in obs.values():
        assert o["traceId"] == trace_id

    # the tree
    root = obs[ids["root"]]
    assert root["name"] == "pipeline" and root["parentObservationId"] is None
    assert obs[ids["retrieve"]]["parentObservationId"] == ids["root"]
    assert obs[ids["search_index"]]["parentObservationId"] == ids["retrieve"]
    for child in ("summarise", "rerank", "ctx_error", "explicit_error"):
        assert obs[ids[child]]["parentObservationId"] == ids["root"], child
    assert names["failing-tool"]["parentObservationId"] == ids["root"]

    # types and IO
    assert root["type"] == "SPAN" and obs[ids["search_index"]]["type"] == "SPAN"
    assert obs[ids["search_index"]]["input"] == {"q": "What is Lightfuse?"}
    assert obs[ids["search_index"]]["output"] == {"hits": 2}
    assert root["output"] == {"answer": "A small Langfuse-compatible server."}
    for o in obs.values():
        assert o["startTime"] and o["endTime"] and o["endTime"] >= o["startTime"]

    # a generation without cost: built-in gpt-4o price (2.5e-6 per input, 1e-5 per output token)
    summarise = obs[ids["summarise"]]
    assert summarise["type"] == "GENERATION" and summarise["model"] == "gpt-4o"
    assert summarise["usageDetails"] == {"input": 1000, "output": 200, "total": 1200}
    assert summarise["costDetails"]["input"] == pytest.approx(0.0025)
    assert summarise["costDetails"]["output"] == pytest.approx(0.002)
    assert summarise["calculatedTotalCost"] == pytest.approx(0.0045)
    assert float(summarise["modelParameters"]["temperature"]) == 0.2
    assert summarise["metadata"]["attempt"] == 2 and summarise["metadata"]["tier"] == "gold"
    assert summarise["output"] == "Lightfuse is a small Langfuse-compatible server."

    # provided cost wins over the gpt-4o-mini price
    rerank = obs[ids["rerank"]]
    assert rerank["type"] == "GENERATION" and rerank["model"] == "gpt-4o-mini"
    assert rerank["usageDetails"] == {"input": 50, "output": 5, "total": 55}
    assert rerank["costDetails"] == pytest.approx({"input": 0.01, "output": 0.02, "total": 0.03})
    assert rerank["calculatedTotalCost"] == pytest.approx(0.03)
    assert rerank["input"] == [{"role": "user", "content": "rank these"}]
    assert rerank["output"] == {"role": "assistant", "content": "doc-2, doc-1"}
    assert trace["totalCost"] == pytest.approx(0.0345)

    # errors: @observe records the exception message, a failing `with` block the OTel status,
    # an explicit update its level and message
    failing = names["failing-tool"]
    assert failing["level"] == "ERROR" and failing["statusMessage"] == "tool exploded"
    ctx_error = obs[ids["ctx_error"]]
    assert ctx_error["level"] == "ERROR" and "context manager boom" in ctx_error["statusMessage"]
    explicit = obs[ids["explicit_error"]]
    assert explicit["level"] == "ERROR" and explicit["statusMessage"] == "quota exhausted"
    assert root["level"] == "DEFAULT" and summarise["level"] == "DEFAULT"

    # scores: trace and observation scores from the SDK's two delivery paths
    scores = {s["name"]: s for s in trace["scores"]}
    assert set(scores) == {"helpfulness", "tone", "correct", "latency-ok"}
    assert scores["helpfulness"]["value"] == 0.9 and scores["helpfulness"]["comment"] == "good"
    assert scores["helpfulness"]["dataType"] == "NUMERIC" and scores["helpfulness"]["observationId"] is None
    assert scores["tone"]["dataType"] == "CATEGORICAL" and scores["tone"]["stringValue"] == "friendly"
    assert scores["tone"]["observationId"] == ids["root"]
    assert scores["correct"]["dataType"] == "BOOLEAN" and scores["correct"]["value"] == 1
    assert scores["correct"]["observationId"] == ids["summarise"]
    assert scores["latency-ok"]["value"] == 3 and scores["latency-ok"]["dataType"] == "NUMERIC"

    # the same data through the list APIs
    listed = httpx.get(f"{server.url}/api/public/traces", params={"userId": "user-42"}, auth=server.auth)
    assert [t["id"] for t in listed.json()["data"]] == [trace_id]
    session = httpx.get(f"{server.url}/api/public/sessions/session-7", auth=server.auth).json()
    assert [t["id"] for t in session["traces"]] == [trace_id]
    gens = httpx.get(
        f"{server.url}/api/public/v2/observations",
        params={"traceId": trace_id, "type": "GENERATION", "fields": "core,basic,usage,model"},
        auth=server.auth,
    )
    assert gens.status_code == 200, gens.text
    assert sorted(o["id"] for o in gens.json()["data"]) == sorted([ids["summarise"], ids["rerank"]])
    v3 = httpx.get(f"{server.url}/api/public/v3/scores", params={"traceId": trace_id}, auth=server.auth)
    assert v3.status_code == 200, v3.text
    assert len(v3.json()["data"]) == 4
