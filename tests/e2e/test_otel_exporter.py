"""A plain opentelemetry-sdk with the OTLP/HTTP exporter (no Langfuse code) against a real server.

tests/clients/scripts/otel_exporter.py exports three traces: GenAI semantic-convention spans
(protobuf + gzip, /api/public/otel/v1/traces, auth from OTEL_EXPORTER_OTLP_HEADERS), OpenInference
spans (protobuf + deflate, the plain /v1/traces path) and OTLP/JSON built from the SDK's own encoding
(gzip). Each is read back through the public API.
"""

from __future__ import annotations

import json
import subprocess
from urllib.parse import quote

import httpx
import pytest

from tests.conftest import ROOT, client_python

pytestmark = pytest.mark.slow

GPT4O_IN, GPT4O_CACHED, GPT4O_OUT = 2.5e-6, 1.25e-6, 1e-5
MINI_IN, MINI_OUT = 1.5e-7, 6e-7


def run_otel_sdk(server, extra_headers: str = "") -> dict:
    """tests/clients/scripts/otel_exporter.py in the opentelemetry-sdk venv against ``server``; its summary."""
    basic = server.basic_header["Authorization"]
    env = {
        "LIGHTFUSE_URL": server.url,
        "LIGHTFUSE_BASIC": basic,
        # the OTel spec's header syntax: comma-separated key=value, values URL-encoded
        "OTEL_EXPORTER_OTLP_HEADERS": f"Authorization={quote(basic)}{extra_headers}",
        "PATH": "/usr/bin:/bin",
    }
    out = subprocess.run(
        [client_python("otel"), str(ROOT / "tests" / "clients" / "scripts" / "otel_exporter.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, (out.stdout[-2000:], out.stderr[-4000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture
def exported(server) -> dict:
    return run_otel_sdk(server, extra_headers=",x-team=evals")


def get_trace(server, trace_id: str) -> tuple[dict, dict[str, dict]]:
    r = httpx.get(f"{server.url}/api/public/traces/{trace_id}", auth=server.auth)
    assert r.status_code == 200, r.text
    trace = r.json()
    return trace, {o["id"]: o for o in trace["observations"]}


def test_genai_semconv_protobuf_gzip(server, exported):
    ids = exported
    trace, obs = get_trace(server, ids["genai_trace"])
    assert set(obs) == {ids["genai_root"], ids["genai_chat"], ids["genai_tool"], ids["genai_error"]}
    assert trace["name"] == "agent-run"
    assert trace["userId"] == "otel-user" and trace["sessionId"] == "otel-session"
    assert trace["version"] == "2.1.0"  # resource service.version
    assert trace["metadata"]["resourceAttributes"]["service.name"] == "genai-app"
    assert trace["metadata"]["scope"] == {
        "name": "my.genai.instrumentation",
        "version": "0.3.0",
        "attributes": {},
    }

    root = obs[ids["genai_root"]]
    assert root["type"] == "SPAN" and root["parentObservationId"] is None
    chat = obs[ids["genai_chat"]]
    assert chat["type"] == "GENERATION" and chat["parentObservationId"] == ids["genai_root"]
    assert chat["name"] == "chat gpt-4o" and chat["model"] == "gpt-4o"
    # cached input tokens get their own key and are taken out of "input"
    assert chat["usageDetails"] == {"input": 600, "input_cached_tokens": 400, "output": 200, "total": 1200}
    assert chat["costDetails"] == pytest.approx(
        {
            "input": 600 * GPT4O_IN,
            "input_cached_tokens": 400 * GPT4O_CACHED,
            "output": 200 * GPT4O_OUT,
            "total": 600 * GPT4O_IN + 400 * GPT4O_CACHED + 200 * GPT4O_OUT,
        }
    )
    assert chat["modelParameters"] == {"temperature": 0.3, "max_tokens": 256}
    assert chat["input"] == [{"role": "user", "parts": [{"type": "text", "content": "hi"}]}]
    assert chat["output"] == [{"role": "assistant", "parts": [{"type": "text", "content": "hello"}]}]
    # the mapped IO keys leave the attribute copy, the rest stays (as strings)
    attributes = chat["metadata"]["attributes"]
    assert "gen_ai.input.messages" not in attributes and attributes["gen_ai.system"] == "openai"

    tool = obs[ids["genai_tool"]]
    assert tool["type"] == "TOOL" and tool["name"] == "search"
    assert tool["input"] == {"q": "otel"} and tool["output"] == "3 hits"
    error = obs[ids["genai_error"]]
    assert error["level"] == "ERROR" and error["statusMessage"] == "TimeoutError: backend timed out"
    assert trace["totalCost"] == pytest.approx(chat["calculatedTotalCost"])


def test_openinference_plain_v1_path_deflate(server, exported):
    ids = exported
    trace, obs = get_trace(server, ids["oi_trace"])
    assert set(obs) == {ids["oi_chain"], ids["oi_llm"]}
    chain = obs[ids["oi_chain"]]
    assert chain["type"] == "CHAIN" and chain["parentObservationId"] is None
    assert chain["input"] == "What is 2+2?"
    llm = obs[ids["oi_llm"]]
    assert llm["type"] == "GENERATION" and llm["parentObservationId"] == ids["oi_chain"]
    assert llm["model"] == "gpt-4o-mini"
    assert llm["usageDetails"] == {"input": 100, "output": 50, "total": 150}
    assert llm["costDetails"] == pytest.approx(
        {"input": 100 * MINI_IN, "output": 50 * MINI_OUT, "total": 100 * MINI_IN + 50 * MINI_OUT}
    )
    assert llm["modelParameters"] == {"temperature": 0}
    # input.value wins over the flattened llm.input_messages
    assert llm["input"] == {"messages": [{"role": "user", "content": "What is 2+2?"}]}
    assert trace["name"] == "math-chain" and trace["input"] == "What is 2+2?"
    assert trace["totalCost"] == pytest.approx(100 * MINI_IN + 50 * MINI_OUT)

    # the same generation through the v2 observations API (IO as raw text there)
    r = httpx.get(
        f"{server.url}/api/public/v2/observations",
        params={"traceId": ids["oi_trace"], "type": "GENERATION", "fields": "core,basic,usage,io,model"},
        auth=server.auth,
    )
    assert r.status_code == 200, r.text
    [item] = r.json()["data"]
    assert item["id"] == ids["oi_llm"] and item["providedModelName"] == "gpt-4o-mini"
    assert json.loads(item["input"]) == {"messages": [{"role": "user", "content": "What is 2+2?"}]}


def test_otlp_json_with_gzip(server, exported):
    ids = exported
    assert ids["json_int_as_string"]  # protobuf's JSON mapping sends int64 attributes as strings
    assert ids["json_response"] == {}
    trace, obs = get_trace(server, ids["json_trace"])
    assert set(obs) == {ids["json_root"], ids["json_gen"]}
    gen = obs[ids["json_gen"]]
    assert gen["type"] == "GENERATION" and gen["parentObservationId"] == ids["json_root"]
    assert gen["model"] == "gpt-4o"
    assert gen["usageDetails"] == {"input": 2000, "output": 100, "total": 2100}
    assert gen["costDetails"] == {"total": 0.5} and gen["calculatedTotalCost"] == 0.5
    # langfuse.observation.level beats the span status; the status description is the message
    assert gen["level"] == "WARNING" and gen["statusMessage"] == "partial answer"
    assert trace["totalCost"] == 0.5


def test_metrics_exports_are_accepted_and_discarded(server):
    for path in ("/api/public/otel/v1/metrics", "/v1/metrics"):
        r = httpx.post(
            server.url + path,
            content=b"",
            auth=server.auth,
            headers={"Content-Type": "application/x-protobuf"},
        )
        assert r.status_code == 200, (path, r.text)
        r = httpx.post(server.url + path, json={"resourceMetrics": []}, auth=server.auth)
        assert r.status_code == 200 and r.json() == {"message": "OK"}
        assert httpx.post(server.url + path, json={}).status_code == 401
