"""Driven by tests/e2e/test_otel_exporter.py inside the plain OpenTelemetry venv (no Langfuse code).

Three exports, one trace each, all spans made by the real opentelemetry-sdk:

* ``genai``       - OTel GenAI semantic-convention spans, exported by OTLPSpanExporter (protobuf, gzip)
                    to /api/public/otel/v1/traces; the Basic auth header comes from
                    OTEL_EXPORTER_OTLP_HEADERS, as an operator would configure it;
* ``openinference`` - OpenInference spans, OTLPSpanExporter (protobuf, deflate) to the plain /v1/traces
                    path with the header passed to the exporter;
* ``json``        - spans captured in memory, encoded with the SDK's OTLP encoder and sent as OTLP/JSON
                    (hex ids, gzip) to /api/public/otel/v1/traces: this exporter has no JSON encoding.

Base URL and auth: LIGHTFUSE_URL, LIGHTFUSE_BASIC (the "Basic ..." header value).
Prints the ids as one JSON line; exits non-zero if any export is not a success.
"""

import base64
import gzip
import json
import os
import sys

import requests
from google.protobuf.json_format import MessageToDict
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

BASE = os.environ["LIGHTFUSE_URL"]
BASIC = os.environ["LIGHTFUSE_BASIC"]
ids: dict = {}


class Recording(SpanExporter):
    """Delegates to a real exporter and remembers every result, so a refused export fails the script."""

    def __init__(self, inner: SpanExporter) -> None:
        self.inner = inner
        self.results: list = []

    def export(self, spans):
        result = self.inner.export(spans)
        self.results.append(result)
        return result

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)


def provider_for(exporter: SpanExporter, service: str) -> TracerProvider:
    provider = TracerProvider(resource=Resource.create({"service.name": service, "service.version": "2.1.0"}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def hexid(n: int, width: int) -> str:
    return format(n, f"0{width}x")


# --- 1. GenAI semantic conventions, protobuf + gzip, Langfuse path, headers from the environment ----------
genai_exporter = Recording(
    OTLPSpanExporter(endpoint=f"{BASE}/api/public/otel/v1/traces", compression=Compression.Gzip)
)
provider = provider_for(genai_exporter, "genai-app")
tracer = provider.get_tracer("my.genai.instrumentation", "0.3.0")
with tracer.start_as_current_span("agent-run") as root:
    root.set_attribute("user.id", "otel-user")
    root.set_attribute("session.id", "otel-session")
    ids["genai_trace"] = hexid(root.get_span_context().trace_id, 32)
    ids["genai_root"] = hexid(root.get_span_context().span_id, 16)
    with tracer.start_as_current_span("chat gpt-4o", kind=SpanKind.CLIENT) as chat:
        ids["genai_chat"] = hexid(chat.get_span_context().span_id, 16)
        chat.set_attributes(
            {
                "gen_ai.operation.name": "chat",
                "gen_ai.system": "openai",
                "gen_ai.request.model": "gpt-4o",
                "gen_ai.request.temperature": 0.3,
                "gen_ai.request.max_tokens": 256,
                "gen_ai.usage.input_tokens": 1000,
                "gen_ai.usage.output_tokens": 200,
                "gen_ai.usage.cache_read.input_tokens": 400,
                "gen_ai.input.messages": json.dumps(
                    [{"role": "user", "parts": [{"type": "text", "content": "hi"}]}]
                ),
                "gen_ai.output.messages": json.dumps(
                    [{"role": "assistant", "parts": [{"type": "text", "content": "hello"}]}]
                ),
            }
        )
    with tracer.start_as_current_span("execute_tool search") as tool:
        ids["genai_tool"] = hexid(tool.get_span_context().span_id, 16)
        tool.set_attributes(
            {
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": "search",
                "gen_ai.tool.call.arguments": '{"q": "otel"}',
                "gen_ai.tool.call.result": "3 hits",
            }
        )
    try:
        with tracer.start_as_current_span("flaky-step") as flaky:
            ids["genai_error"] = hexid(flaky.get_span_context().span_id, 16)
            raise TimeoutError("backend timed out")
    except TimeoutError:
        pass
provider.force_flush()
provider.shutdown()

# --- 2. OpenInference, protobuf + deflate, plain /v1/traces, header given to the exporter ----------------
oi_exporter = Recording(
    OTLPSpanExporter(
        endpoint=f"{BASE}/v1/traces", headers={"Authorization": BASIC}, compression=Compression.Deflate
    )
)
provider = provider_for(oi_exporter, "openinference-app")
tracer = provider.get_tracer("openinference.instrumentation.openai", "0.1.0")
with tracer.start_as_current_span("math-chain") as chain:
    chain.set_attributes(
        {"openinference.span.kind": "CHAIN", "input.value": "What is 2+2?", "output.value": "4"}
    )
    ids["oi_trace"] = hexid(chain.get_span_context().trace_id, 32)
    ids["oi_chain"] = hexid(chain.get_span_context().span_id, 16)
    with tracer.start_as_current_span("ChatCompletion") as llm:
        ids["oi_llm"] = hexid(llm.get_span_context().span_id, 16)
        llm.set_attributes(
            {
                "openinference.span.kind": "LLM",
                "llm.model_name": "gpt-4o-mini",
                "llm.invocation_parameters": json.dumps({"temperature": 0}),
                "llm.token_count.prompt": 100,
                "llm.token_count.completion": 50,
                "llm.token_count.total": 150,
                "input.value": json.dumps({"messages": [{"role": "user", "content": "What is 2+2?"}]}),
                "input.mime_type": "application/json",
                "output.value": "4",
                "llm.input_messages.0.message.role": "user",
                "llm.input_messages.0.message.content": "What is 2+2?",
            }
        )
provider.force_flush()
provider.shutdown()

# --- 3. OTLP/JSON, built from the SDK's own protobuf encoding, gzip ----------------------------------------
memory = InMemorySpanExporter()
provider = TracerProvider(resource=Resource.create({"service.name": "json-app"}))
provider.add_span_processor(BatchSpanProcessor(memory))
tracer = provider.get_tracer("json.instrumentation")
with tracer.start_as_current_span("pipeline") as top:
    ids["json_trace"] = hexid(top.get_span_context().trace_id, 32)
    ids["json_root"] = hexid(top.get_span_context().span_id, 16)
    with tracer.start_as_current_span("chat claude") as gen:
        ids["json_gen"] = hexid(gen.get_span_context().span_id, 16)
        gen.set_attributes(
            {
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": "gpt-4o",
                "gen_ai.usage.input_tokens": 2000,
                "gen_ai.usage.output_tokens": 100,
                "gen_ai.usage.cost": 0.5,  # provided cost wins over the model price
                "langfuse.observation.level": "WARNING",
            }
        )
        gen.set_status(Status(StatusCode.ERROR, "partial answer"))
provider.force_flush()
request = MessageToDict(encode_spans(memory.get_finished_spans()))


def hex_ids(node):
    # protobuf's JSON mapping writes bytes as base64; OTLP/JSON wants trace and span ids as hex
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("traceId", "spanId", "parentSpanId") and isinstance(value, str):
                node[key] = base64.b64decode(value).hex()
            else:
                hex_ids(value)
    elif isinstance(node, list):
        for item in node:
            hex_ids(item)


hex_ids(request)
ids["json_int_as_string"] = any(
    "intValue" in a["value"] and isinstance(a["value"]["intValue"], str)
    for rs in request["resourceSpans"]
    for ss in rs["scopeSpans"]
    for sp in ss["spans"]
    for a in sp.get("attributes", [])
)
response = requests.post(
    f"{BASE}/api/public/otel/v1/traces",
    data=gzip.compress(json.dumps(request).encode()),
    headers={"Authorization": BASIC, "Content-Type": "application/json", "Content-Encoding": "gzip"},
    timeout=30,
)
if response.status_code != 200:
    sys.exit(f"OTLP/JSON export refused: {response.status_code} {response.text}")
ids["json_response"] = response.json()

for name, exporter in (("genai", genai_exporter), ("openinference", oi_exporter)):
    if not exporter.results or any(r is not SpanExportResult.SUCCESS for r in exporter.results):
        sys.exit(f"{name} export failed: {exporter.results}")
print(json.dumps(ids))
