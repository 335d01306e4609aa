"""LiteLLM's two Langfuse callbacks against a real Lightfuse server.

``langfuse`` logs through the 2.x ingestion-API client, ``langfuse_otel`` exports OTLP/HTTP spans
(OpenInference ``llm.*`` attributes plus Langfuse ones). The client script makes one successful and
one failing mocked ``gpt-4o`` completion; the test finds both traces by user id and checks the
generations: model, usage, cost, latency, IO and, for the failure, level ERROR and the message.
"""

from __future__ import annotations

import json
import subprocess
from datetime import datetime

import httpx
import pytest

from tests.conftest import ROOT, client_python

pytestmark = pytest.mark.slow

# what LiteLLM itself computes for the mocked usage (10 prompt + 20 completion tokens of gpt-4o)
LITELLM_COST = 10 * 2.5e-6 + 20 * 1e-5


def run_client(server, mode: str) -> dict:
    env = {
        "LANGFUSE_HOST": server.url,
        "LANGFUSE_PUBLIC_KEY": server.public_key,
        "LANGFUSE_SECRET_KEY": server.secret_key,
        "PATH": "/usr/bin:/bin",
    }
    out = subprocess.run(
        [
            client_python("litellm"),
            str(ROOT / "tests" / "clients" / "scripts" / "litellm_callbacks.py"),
            mode,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert out.returncode == 0, (out.stdout[-2000:], out.stderr[-4000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def _ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def traces_of(server, user_id: str) -> dict[str, dict]:
    listed = httpx.get(f"{server.url}/api/public/traces", params={"userId": user_id}, auth=server.auth)
    assert listed.status_code == 200, listed.text
    out = {}
    for item in listed.json()["data"]:
        r = httpx.get(f"{server.url}/api/public/traces/{item['id']}", auth=server.auth)
        assert r.status_code == 200, r.text
        out[r.json()["name"]] = r.json()
    return out


def only_generation(trace: dict) -> dict:
    gens = [o for o in trace["observations"] if o["type"] == "GENERATION"]
    assert len(gens) == 1, [(o["name"], o["type"]) for o in trace["observations"]]
    return gens[0]


def check_success(trace: dict, ids: dict, mode: str) -> dict:
    assert trace["userId"] == ids["user_id"] and trace["sessionId"] == ids["session_id"]
    assert sorted(trace["tags"]) == sorted(["litellm", mode])
    gen = only_generation(trace)
    assert gen["name"] == "answer" and gen["model"] == "gpt-4o" and gen["level"] == "DEFAULT"
    usage = ids["usage"]
    assert (usage["prompt_tokens"], usage["completion_tokens"]) == (10, 20)  # LiteLLM's mock usage
    assert gen["usageDetails"]["input"] == usage["prompt_tokens"]
    assert gen["usageDetails"]["output"] == usage["completion_tokens"]
    assert gen["usageDetails"]["total"] == usage["total_tokens"]
    # LiteLLM reports its own cost; a provided cost wins over the server's price
    assert gen["costDetails"]["total"] == pytest.approx(LITELLM_COST)
    assert gen["calculatedTotalCost"] == pytest.approx(LITELLM_COST)
    assert trace["totalCost"] == pytest.approx(LITELLM_COST)
    assert _ts(gen["endTime"]) > _ts(gen["startTime"]) and gen["latency"] > 0
    assert "What is Lightfuse?" in json.dumps(gen["input"])
    assert ids["answer"] in json.dumps(gen["output"])
    return gen


def check_failure(trace: dict, ids: dict) -> dict:
    gen = only_generation(trace)
    assert gen["name"] == "answer-failed" and gen["model"] == "gpt-4o"
    assert gen["level"] == "ERROR"
    assert _ts(gen["endTime"]) >= _ts(gen["startTime"])
    assert trace["userId"] == ids["user_id"]
    return gen


def test_litellm_langfuse_callback(server):
    ids = run_client(server, "langfuse")
    traces = traces_of(server, ids["user_id"])
    assert set(traces) == {"litellm-chat", "litellm-chat-failed"}
    gen = check_success(traces["litellm-chat"], ids, "langfuse")
    assert float(gen["modelParameters"]["temperature"]) == 0.2
    failed = check_failure(traces["litellm-chat-failed"], ids)
    # the 2.x client carries the exception text as status message (and as output)
    assert ids["failure_text"] in failed["statusMessage"]
    assert failed["usageDetails"] == {} and failed["calculatedTotalCost"] == 0


def test_litellm_langfuse_otel_callback(server):
    ids = run_client(server, "langfuse_otel")
    traces = traces_of(server, ids["user_id"])
    assert set(traces) == {"litellm-chat", "litellm-chat-failed"}
    trace = traces["litellm-chat"]
    assert len(trace["id"]) == 32 and int(trace["id"], 16)  # the OTel trace id, hex
    gen = check_success(trace, ids, "langfuse_otel")
    assert gen["usageDetails"] == {"input": 10, "output": 20, "total": 30}
    assert gen["modelParameters"] == {"temperature": 0.2}
    assert gen["parentObservationId"] is None
    assert trace["input"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is Lightfuse?"},
    ]
    assert trace["output"] == {"role": "assistant", "content": ids["answer"]}
    # the raw-request child span LiteLLM adds hangs under the generation
    children = [o for o in trace["observations"] if o["parentObservationId"] == gen["id"]]
    assert children and all(o["type"] == "SPAN" for o in children)
    # LiteLLM sets OTel's deployment.environment resource attribute
    assert gen["environment"] == trace["environment"] == "production"

    failed = check_failure(traces["litellm-chat-failed"], ids)
    # LiteLLM marks the span status ERROR without a description and puts the text in error.message,
    # which Langfuse keeps among the span attributes in metadata (statusMessage stays empty)
    attributes = failed["metadata"]["attributes"]
    assert ids["failure_text"] in attributes["error.message"]
    assert attributes["error.type"] == "InternalServerError"
