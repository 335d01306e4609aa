"""OTLP over gRPC (LIGHTFUSE_OTLP_GRPC_PORT) against a real server process, on both backends.

Spans are made by the real opentelemetry-sdk and sent by its gRPC exporter (opentelemetry-exporter-otlp-proto-
grpc); refusals are checked with a plain grpcio channel, which shows the status codes the exporter only logs.
"""

from __future__ import annotations

import base64
import json
import signal
from collections.abc import Iterator

import grpc
import httpx
import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from tests.conftest import Server, free_port, make_server

pytestmark = pytest.mark.slow

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
GPT4O_IN, GPT4O_CACHED, GPT4O_OUT = 2.5e-6, 1.25e-6, 1e-5


@pytest.fixture
def grpc_server(tmp_path, backend) -> Iterator[Server]:
    port = free_port()
    srv = make_server(tmp_path, backend, LIGHTFUSE_OTLP_GRPC_PORT=str(port))
    srv.extra["grpc_target"] = f"127.0.0.1:{port}"
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def basic(public_key: str, secret_key: str) -> str:
    return "Basic " + base64.b64encode(f"{public_key}:{secret_key}".encode()).decode()


def agent_spans(run: str) -> list[ReadableSpan]:
    """One trace: an agent span, a chat generation (GenAI semantic conventions) and a tool call under it."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(
        resource=Resource.create({"service.name": "grpc-app", "service.version": "3.0"})
    )
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("my.genai.instrumentation", "0.3.0")
    with tracer.start_as_current_span(f"agent {run}") as root:
        root.set_attribute("user.id", "grpc-user")
        root.set_attribute("session.id", f"session-{run}")
        with tracer.start_as_current_span("chat gpt-4o", kind=SpanKind.CLIENT) as chat:
            chat.set_attributes(
                {
                    "gen_ai.operation.name": "chat",
                    "gen_ai.system": "openai",
                    "gen_ai.request.model": "gpt-4o",
                    "gen_ai.request.temperature": 0.3,
                    "gen_ai.usage.input_tokens": 1000,
                    "gen_ai.usage.output_tokens": 200,
                    "gen_ai.usage.cache_read.input_tokens": 400,
                    "gen_ai.input.messages": json.dumps(
                        [{"role": "user", "parts": [{"type": "text", "content": "hi"}]}]
                    ),
                }
            )
            with tracer.start_as_current_span("execute_tool search") as tool:
                tool.set_attributes(
                    {
                        "gen_ai.operation.name": "execute_tool",
                        "gen_ai.tool.name": "search",
                        "gen_ai.tool.call.arguments": '{"q": "otel"}',
                        "gen_ai.tool.call.result": "3 hits",
                    }
                )
    provider.shutdown()
    return list(memory.get_finished_spans())


def trace_hex(spans: list[ReadableSpan]) -> str:
    return format(spans[0].context.trace_id, "032x")


def exporter(srv: Server, **kwargs) -> OTLPSpanExporter:
    kwargs.setdefault("headers", (("authorization", basic(srv.public_key, srv.secret_key)),))
    return OTLPSpanExporter(endpoint=srv.extra["grpc_target"], insecure=True, timeout=30, **kwargs)


def get_trace(srv: Server, trace_id: str) -> httpx.Response:
    return httpx.get(f"{srv.url}/api/public/traces/{trace_id}", auth=srv.auth, timeout=30)


def raw_export(srv: Server, body: bytes, metadata: tuple = ()) -> grpc.RpcError | None:
    """One Export call with a plain grpcio channel; the error it ended with, or None for OK."""
    with grpc.insecure_channel(srv.extra["grpc_target"]) as channel:
        call = channel.unary_unary(EXPORT)
        try:
            call(body, metadata=metadata, timeout=30)
        except grpc.RpcError as exc:
            return exc
    return None


def _shifted(hex_id: str) -> str:
    return hex_id[:-1] + format(int(hex_id[-1], 16) ^ 1, "x")


def same_spans_other_ids(spans: list[ReadableSpan]) -> bytes:
    """The OTLP protobuf of ``spans`` with every trace and span id changed in its last bit."""
    request: ExportTraceServiceRequest = encode_spans(spans)
    for resource_spans in request.resource_spans:
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                for field in ("trace_id", "span_id", "parent_span_id"):
                    value = getattr(span, field)
                    if value:
                        setattr(span, field, value[:-1] + bytes([value[-1] ^ 1]))
    return request.SerializeToString()


def normalised(trace: dict, id_map: dict[str, str]) -> dict:
    """A trace read back, with ids mapped and the storage times (createdAt, updatedAt) left out."""
    text = json.dumps(trace)
    for old, new in id_map.items():
        text = text.replace(old, new)
    value = json.loads(text)

    def strip(node):
        if isinstance(node, dict):
            return {k: strip(v) for k, v in node.items() if k not in ("createdAt", "updatedAt")}
        if isinstance(node, list):
            return [strip(v) for v in node]
        return node

    value = strip(value)
    value["observations"] = sorted(value["observations"], key=lambda o: o["id"])
    return value


def test_sdk_grpc_export_reads_back_as_the_http_export(grpc_server):
    srv = grpc_server
    spans = agent_spans("a")
    sdk = exporter(srv)
    assert sdk.export(spans) == SpanExportResult.SUCCESS
    sdk.shutdown()
    # the same spans (ids shifted by one bit) over OTLP/HTTP protobuf
    r = httpx.post(
        f"{srv.url}/api/public/otel/v1/traces",
        content=same_spans_other_ids(spans),
        headers={"Content-Type": "application/x-protobuf", "Authorization": basic(*srv.auth)},
        timeout=30,
    )
    assert r.status_code == 200, r.text

    trace_id = trace_hex(spans)
    via_grpc = get_trace(srv, trace_id)
    assert via_grpc.status_code == 200, via_grpc.text
    trace = via_grpc.json()
    obs = {o["name"]: o for o in trace["observations"]}
    assert set(obs) == {"agent a", "chat gpt-4o", "search"}  # a tool span is named after its tool
    assert trace["name"] == "agent a" and trace["userId"] == "grpc-user" and trace["sessionId"] == "session-a"
    assert trace["metadata"]["resourceAttributes"]["service.name"] == "grpc-app"
    root, chat, tool = obs["agent a"], obs["chat gpt-4o"], obs["search"]
    assert root["parentObservationId"] is None
    assert chat["parentObservationId"] == root["id"] and tool["parentObservationId"] == chat["id"]
    assert chat["type"] == "GENERATION" and chat["model"] == "gpt-4o" and tool["type"] == "TOOL"
    assert chat["usageDetails"] == {"input": 600, "input_cached_tokens": 400, "output": 200, "total": 1200}
    expected_cost = 600 * GPT4O_IN + 400 * GPT4O_CACHED + 200 * GPT4O_OUT
    assert chat["costDetails"]["total"] == pytest.approx(expected_cost)
    assert trace["totalCost"] == pytest.approx(expected_cost)

    other_ids = {
        _shifted(format(s.context.span_id, "016x")): format(s.context.span_id, "016x") for s in spans
    }
    other_ids[_shifted(trace_id)] = trace_id
    via_http = get_trace(srv, _shifted(trace_id))
    assert via_http.status_code == 200, via_http.text
    # the whole trace as the API shows it: same tree, IO, usage, cost, metadata, times
    assert normalised(via_http.json(), other_ids) == normalised(trace, {})


def test_gzip_and_every_acknowledged_export_is_readable_at_once(grpc_server):
    srv = grpc_server
    sdk = exporter(srv, compression=grpc.Compression.Gzip)
    for run in range(8):
        spans = agent_spans(f"gz{run}")
        assert sdk.export(spans) == SpanExportResult.SUCCESS
        # no wait, no retry: the answer came after the commit
        r = get_trace(srv, trace_hex(spans))
        assert r.status_code == 200, (run, r.text)
        assert len(r.json()["observations"]) == 3
    sdk.shutdown()


def test_acknowledged_spans_survive_a_killed_server(grpc_server):
    srv = grpc_server
    spans = agent_spans("kill")
    sdk = exporter(srv)
    assert sdk.export(spans) == SpanExportResult.SUCCESS
    sdk.shutdown()
    srv.stop(signal.SIGKILL)  # no shutdown hook runs: only what was committed before the answer is there
    srv.start()
    r = get_trace(srv, trace_hex(spans))
    assert r.status_code == 200, r.text
    assert len(r.json()["observations"]) == 3


def test_refusals_store_nothing(grpc_server):
    srv = grpc_server
    spans = agent_spans("refused")
    body = encode_spans(spans).SerializeToString()

    wrong = raw_export(srv, body, (("authorization", basic(srv.public_key, "sk-lf-wrong")),))
    assert wrong is not None and wrong.code() == grpc.StatusCode.UNAUTHENTICATED
    missing = raw_export(srv, body)
    assert missing is not None and missing.code() == grpc.StatusCode.UNAUTHENTICATED
    sdk = exporter(srv, headers=(("authorization", basic("pk-lf-nobody", "sk-lf-nobody")),))
    assert sdk.export(spans) == SpanExportResult.FAILURE  # not retried: UNAUTHENTICATED is final
    sdk.shutdown()

    auth = (("authorization", basic(*srv.auth)),)
    malformed = raw_export(srv, b"\x0a\xff\xff\xff\xff\x0f not protobuf", auth)
    assert malformed is not None and malformed.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert malformed.details()
    version = raw_export(srv, body, (*auth, ("x-langfuse-ingestion-version", "99")))
    assert version is not None and version.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert get_trace(srv, trace_hex(spans)).status_code == 404

    # the same body with good credentials is stored: the refusals above were about them, not the spans
    assert raw_export(srv, body, auth) is None
    assert get_trace(srv, trace_hex(spans)).status_code == 200
    metrics = httpx.get(f"{srv.url}/metrics", timeout=30).text
    counted = {
        line.split('code="')[1].split('"')[0]: float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("lightfuse_grpc_requests_total{")
    }
    assert counted["UNAUTHENTICATED"] >= 2 and counted["INVALID_ARGUMENT"] == 2 and counted["OK"] == 1


def test_sigterm_keeps_serving_grpc_through_the_delay_then_exits_clean(tmp_path, backend):
    port = free_port()
    srv = make_server(
        tmp_path, backend, LIGHTFUSE_OTLP_GRPC_PORT=str(port), LIGHTFUSE_SHUTDOWN_DELAY_SECONDS="3"
    )
    srv.extra["grpc_target"] = f"127.0.0.1:{port}"
    srv.start()
    try:
        assert srv.process is not None
        srv.process.send_signal(signal.SIGTERM)
        # readiness turns 503 at once, and gRPC is still served while load balancers take the pod out
        ready = httpx.get(f"{srv.url}/api/public/ready", timeout=30)
        assert ready.status_code == 503
        spans = agent_spans("draining")
        body = encode_spans(spans).SerializeToString()
        assert raw_export(srv, body, (("authorization", basic(*srv.auth)),)) is None
        assert srv.process.wait(timeout=60) == 0
        srv.process = None
        srv.start()
        r = get_trace(srv, trace_hex(spans))
        assert r.status_code == 200 and len(r.json()["observations"]) == 3
    finally:
        srv.stop()
