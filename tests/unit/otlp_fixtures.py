"""Shared helpers for the OTLP tests: real-SDK exports, decoded-span builders, event pickers."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Tracer

from lightfuse.ingest.otlp_decode import decode_export
from lightfuse.ingest.otlp_mapping import spans_to_events
from lightfuse.services.ingestion.events import ValidEvent, parse_iso_timestamp, validate_event

PROTO = "application/x-protobuf"
JSON = "application/json"
NOW_MS = 1_750_000_000_123  # 2025-06-15T15:06:40.123Z
T0 = 1_750_000_000_000_000_000  # ns, 2025-06-15T15:06:40.000Z
TRACE_ID = "0af7651916cd43dd8448eb211c80319c"


def ms(iso: str) -> int:
    """Mapped events carry epoch-ms times; tests state them as ISO text for readability."""
    return parse_iso_timestamp(iso)


def sdk_export(
    build: Callable[[Tracer], None],
    *,
    resource: dict[str, Any] | None = None,
    scope: str = "test-instrumentation",
    scope_version: str = "1.0.0",
) -> bytes:
    """Run ``build`` against a real SDK tracer and return the OTLP protobuf export of its spans."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create(resource or {"service.name": "test-svc"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    build(provider.get_tracer(scope, scope_version))
    provider.shutdown()
    return encode_spans(exporter.get_finished_spans()).SerializeToString()


def to_events(body: bytes, content_type: str = PROTO, encoding: str | None = None, **kw: Any) -> list[dict]:
    return spans_to_events(decode_export(body, content_type, encoding), NOW_MS, **kw)


def observations(events: list[dict]) -> list[dict]:
    return [e for e in events if e["type"] != "trace-create"]


def traces(events: list[dict]) -> list[dict]:
    return [e for e in events if e["type"] == "trace-create"]


def obs_named(events: list[dict], name: str) -> dict:
    found = [e for e in observations(events) if e["body"]["name"] == name]
    assert len(found) == 1, [e["body"]["name"] for e in observations(events)]
    return found[0]


def span_dict(attrs: dict[str, Any], **over: Any) -> dict[str, Any]:
    """A decoded span (the shape decode_export returns) for mapping-only tests."""
    span = {
        "traceId": TRACE_ID,
        "spanId": "b7ad6b7169203331",
        "parentSpanId": "00f067aa0ba902b7",
        "name": "op",
        "kind": 1,
        "startTimeUnixNano": T0,
        "endTimeUnixNano": T0 + 1_500_000_000,
        "attributes": attrs,
        "events": [],
        "status": {"code": 0, "message": ""},
    }
    span.update(over)
    return span


def map_spans(*spans: dict, scope: str = "x", resource: dict | None = None, **kw: Any) -> list[dict]:
    rs = [
        {
            "resource": {"attributes": resource or {}},
            "scopeSpans": [{"scope": {"name": scope, "version": "", "attributes": {}}, "spans": list(spans)}],
        }
    ]
    return spans_to_events(rs, NOW_MS, **kw)


def map_one(attrs: dict[str, Any], scope: str = "x", **over: Any) -> dict:
    """The observation body for one (non-root) span."""
    return observations(map_spans(span_dict(attrs, **over), scope=scope))[0]["body"]


def assert_all_valid(events: list[dict]) -> None:
    """Every event passes the batch-ingestion validator, so OTLP and /ingestion share one pipeline."""
    for event in events:
        result = validate_event(event, "project", epoch_ms_times=True)
        assert isinstance(result, ValidEvent), (event["type"], result)


def kv(key: str, **value: Any) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(**value))


def openinference_trace(tracer: Tracer) -> None:
    with tracer.start_as_current_span("chain") as root:
        root.set_attribute("openinference.span.kind", "CHAIN")
        root.set_attribute("input.value", "What is 2+2?")
        root.set_attribute("output.value", "4")
        with tracer.start_as_current_span("ChatOpenAI") as llm:
            llm.set_attribute("openinference.span.kind", "LLM")
            llm.set_attribute("llm.model_name", "gpt-4o-mini")
            llm.set_attribute("llm.invocation_parameters", json.dumps({"temperature": 0, "seed": None}))
            llm.set_attribute("llm.token_count.prompt", 50)
            llm.set_attribute("llm.token_count.completion", 20)
            llm.set_attribute("llm.token_count.total", 70)
            llm.set_attribute("llm.token_count.prompt_details.cache_read", 10)
            llm.set_attribute("llm.input_messages.0.message.role", "system")
            llm.set_attribute("llm.input_messages.0.message.content", "You add numbers.")
            llm.set_attribute("llm.input_messages.1.message.role", "user")
            llm.set_attribute("llm.input_messages.1.message.content", "2+2?")
            llm.set_attribute("llm.output_messages.0.message.role", "assistant")
            llm.set_attribute("llm.output_messages.0.message.content", "4")
        with tracer.start_as_current_span("calculator") as tool:
            tool.set_attribute("openinference.span.kind", "TOOL")
            tool.set_attribute("tool.name", "calculator")
            tool.set_attribute("input.value", '{"expr": "2+2"}')
            tool.set_attribute("output.value", "4")
