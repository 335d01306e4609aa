"""OTLP/HTTP trace export decoding (api-semantics 4.1, 4.2): compression, both wire formats,
attribute values, and whole-export rejection. Nothing but OtlpDecodeError may escape.
"""

from __future__ import annotations

import gzip
import json
import zlib

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span
from opentelemetry.trace import Tracer

from lightfuse.ingest.otlp_decode import OtlpDecodeError, decode_export
from lightfuse.ingest.otlp_mapping import spans_to_events
from tests.unit.otlp_fixtures import (
    JSON,
    NOW_MS,
    PROTO,
    T0,
    TRACE_ID,
    assert_all_valid,
    kv,
    ms,
    observations,
    openinference_trace,
    sdk_export,
)

# ------------------------------------------------------------------------------------------------
# transport: compression and malformed input


def test_gzip_and_deflate_bodies_decode_identically() -> None:
    raw = sdk_export(openinference_trace)
    plain = decode_export(raw, PROTO, None)
    assert decode_export(gzip.compress(raw), PROTO, "gzip") == plain
    assert decode_export(zlib.compress(raw), "application/x-protobuf; charset=binary", "deflate") == plain
    raw_deflate = zlib.compressobj(wbits=-15)
    assert decode_export(raw_deflate.compress(raw) + raw_deflate.flush(), PROTO, "Deflate") == plain
    assert decode_export(raw, PROTO, "identity") == plain


def _logs_export() -> bytes:
    record = LogRecord(
        time_unix_nano=T0, body=AnyValue(string_value="a log line"), attributes=[kv("k", int_value=1)]
    )
    return ExportLogsServiceRequest(
        resource_logs=[ResourceLogs(scope_logs=[ScopeLogs(log_records=[record, record])])]
    ).SerializeToString()


def _span_without_id() -> bytes:
    return ExportTraceServiceRequest(
        resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=[Span(trace_id=bytes(16), name="x")])])]
    ).SerializeToString()


@pytest.mark.parametrize(
    ("body", "content_type", "encoding", "message"),
    [
        (b"{}", "text/plain", None, "Invalid content type"),
        (b"{}", "", None, "Invalid content type"),
        (b"not gzip at all", PROTO, "gzip", "Failed to decompress request body"),
        (gzip.compress(b"x" * 100)[:-12], PROTO, "gzip", "Failed to decompress request body"),
        (b"\x00", PROTO, "br", "Failed to decompress request body"),
        (b"\x0a\xff\xff\xff\x0f\x01", PROTO, None, "Failed to parse OTel Protobuf Trace"),
        (b"{not json", JSON, None, "Failed to parse OTel JSON Trace"),
        (b"[1, 2]", JSON, None, "Failed to parse OTel JSON Trace"),
    ],
)
def test_transport_errors(body: bytes, content_type: str, encoding: str | None, message: str) -> None:
    with pytest.raises(OtlpDecodeError) as info:
        decode_export(body, content_type, encoding)
    assert info.value.message == message == str(info.value)


def test_truncated_protobuf_is_rejected() -> None:
    raw = sdk_export(openinference_trace)
    # Cut inside the payload of the first (and only) top-level field: the length prefix now lies.
    with pytest.raises(OtlpDecodeError, match="Failed to parse OTel Protobuf Trace"):
        decode_export(raw[: len(raw) // 2], PROTO, None)
    with pytest.raises(OtlpDecodeError, match="Failed to parse OTel Protobuf Trace"):
        decode_export(gzip.compress(raw[:-3]), PROTO, "gzip")


def test_span_without_ids_rejects_the_whole_export() -> None:
    with pytest.raises(OtlpDecodeError, match="traceId or spanId"):
        decode_export(_span_without_id(), PROTO, None)
    # OTLP logs share field numbers with traces and decode into id-less spans.
    with pytest.raises(OtlpDecodeError, match="traceId or spanId"):
        decode_export(_logs_export(), PROTO, None)


GOOD_JSON_SPAN = {"traceId": TRACE_ID, "spanId": "b7ad6b7169203331", "name": "ok"}


@pytest.mark.parametrize(
    "doc",
    [
        {
            "resourceSpans": [
                {"scopeSpans": [{"spans": [GOOD_JSON_SPAN, {"traceId": TRACE_ID, "name": "no span id"}]}]}
            ]
        },
        {"resourceSpans": [{"scopeSpans": [{"spans": [{"spanId": "b7ad6b7169203331"}]}]}]},
        {"resourceSpans": [{"scopeSpans": [{"spans": [{**GOOD_JSON_SPAN, "traceId": 7}]}]}]},
        {"resourceSpans": [{"scopeSpans": [{"spans": [{**GOOD_JSON_SPAN, "parentSpanId": 12}]}]}]},
        {"resourceSpans": [{"scopeSpans": {"spans": []}}]},
        {"resourceSpans": [{"scopeSpans": [{"spans": {"0": GOOD_JSON_SPAN}}]}]},
        {"resourceSpans": [{"scopeSpans": [{"spans": [{**GOOD_JSON_SPAN, "attributes": {"k": "v"}}]}]}]},
        {"resourceSpans": [{"scopeSpans": [{"spans": [{**GOOD_JSON_SPAN, "events": {}}]}]}]},
        {"resourceSpans": [{"scopeSpans": [{"spans": [{**GOOD_JSON_SPAN, "events": [{"attributes": 1}]}]}]}]},
        {"resourceSpans": [{"resource": {"attributes": {"a": 1}}, "scopeSpans": []}]},
        {"resourceSpans": [{"scopeSpans": [{"scope": {"attributes": "x"}, "spans": []}]}]},
        {"resourceSpans": {"not": "a list"}},
    ],
)
def test_json_structural_defects_reject_the_whole_export(doc: dict) -> None:
    with pytest.raises(OtlpDecodeError, match="^Invalid OTel trace"):
        decode_export(orjson.dumps(doc), JSON, None)


def test_missing_or_empty_resource_spans_is_an_empty_export() -> None:
    assert decode_export(b"{}", JSON, None) == []
    assert decode_export(b'{"resourceSpans": []}', "application/json; charset=utf-8", None) == []
    assert decode_export(b'{"resourceSpans": null}', JSON, None) == []
    assert decode_export(b"", PROTO, None) == []
    # Absent or null collections are fine; only a present non-array is a defect.
    doc = {
        "resourceSpans": [
            {"scopeSpans": [{"spans": [{**GOOD_JSON_SPAN, "attributes": None, "events": None}]}]}
        ]
    }
    assert decode_export(orjson.dumps(doc), JSON, None)[0]["scopeSpans"][0]["spans"][0]["attributes"] == {}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_decoder_never_raises_anything_but_decode_errors(data: st.DataObject) -> None:
    valid = _FUZZ_SEED
    choice = data.draw(st.sampled_from(["random", "mutate", "truncate", "json"]))
    if choice == "random":
        body = data.draw(st.binary(max_size=300))
    elif choice == "mutate":
        pos = data.draw(st.integers(0, len(valid) - 1))
        body = valid[:pos] + bytes([data.draw(st.integers(0, 255))]) + valid[pos + 1 :]
    elif choice == "truncate":
        body = valid[: data.draw(st.integers(0, len(valid)))]
    else:
        body = json.dumps(data.draw(_json_docs)).encode()
    ctype = data.draw(st.sampled_from([PROTO, JSON]))
    encoding = data.draw(st.sampled_from([None, "gzip", "deflate"]))
    if encoding and data.draw(st.booleans()):
        body = gzip.compress(body) if encoding == "gzip" else zlib.compress(body)
    try:
        resource_spans = decode_export(body, ctype, encoding)
    except OtlpDecodeError:
        return
    spans_to_events(resource_spans, NOW_MS)  # whatever decodes must also map


_json_leaf = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.text(max_size=8), st.floats()
)
_json_any = st.recursive(
    _json_leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=12), inner, max_size=3)
    ),
    max_leaves=12,
)
_ANY_VALUE_KEYS = [
    "stringValue",
    "intValue",
    "doubleValue",
    "boolValue",
    "arrayValue",
    "kvlistValue",
    "bytesValue",
]
_attr = st.fixed_dictionaries(
    {
        "key": st.text(max_size=20),
        "value": st.dictionaries(st.sampled_from(_ANY_VALUE_KEYS), _json_any, max_size=2),
    }
)
_json_docs = st.fixed_dictionaries(
    {
        "resourceSpans": st.lists(
            st.fixed_dictionaries(
                {
                    "scopeSpans": st.lists(
                        st.fixed_dictionaries(
                            {
                                "spans": st.lists(
                                    st.fixed_dictionaries(
                                        {
                                            "traceId": st.one_of(st.just(TRACE_ID), _json_any),
                                            "spanId": st.one_of(st.just("b7ad6b7169203331"), _json_any),
                                            "startTimeUnixNano": _json_any,
                                            "attributes": st.one_of(st.lists(_attr, max_size=4), _json_any),
                                        }
                                    ),
                                    max_size=3,
                                )
                            }
                        ),
                        max_size=2,
                    )
                }
            ),
            max_size=2,
        )
    }
)


def _fuzz_seed_build(tracer: Tracer) -> None:
    with tracer.start_as_current_span("s") as span:
        span.set_attribute("gen_ai.usage.input_tokens", 5)
        span.set_attribute("llm.input_messages.0.message.content", "x")
        span.set_attribute("f", 1.5)
        span.set_attribute("b", True)
        span.set_attribute("arr", ["a", "b"])
        span.add_event("gen_ai.choice", {"message": "m"})


_FUZZ_SEED = sdk_export(_fuzz_seed_build)


# ------------------------------------------------------------------------------------------------
# OTLP/JSON attribute decoding (4.2)


def _json_export() -> dict:
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "json-svc"}}]},
                "scopeSpans": [
                    {
                        "scope": {"name": "manual", "version": "0.1"},
                        "spans": [
                            {
                                "traceId": TRACE_ID.upper(),
                                "spanId": "B7AD6B7169203331",
                                "parentSpanId": "",
                                "name": "json-root",
                                "kind": "SPAN_KIND_SERVER",
                                "startTimeUnixNano": str(T0 + 999_999),
                                "endTimeUnixNano": {"low": 0x2A4C0000, "high": 0x1849E6A5},
                                "status": {"code": "STATUS_CODE_ERROR", "message": "bad"},
                                "attributes": [
                                    {"key": "s", "value": {"stringValue": "text"}},
                                    {"key": "i", "value": {"intValue": "9007199254740993"}},
                                    {"key": "neg", "value": {"intValue": {"low": -1, "high": -1}}},
                                    {"key": "big", "value": {"intValue": {"low": 1, "high": 1}}},
                                    {"key": "d", "value": {"doubleValue": 1.25}},
                                    {"key": "nan", "value": {"doubleValue": "NaN"}},
                                    {"key": "b", "value": {"boolValue": False}},
                                    {
                                        "key": "arr",
                                        "value": {
                                            "arrayValue": {
                                                "values": [
                                                    {"intValue": 1},
                                                    {"arrayValue": {"values": [{"stringValue": "x"}]}},
                                                ]
                                            }
                                        },
                                    },
                                    {
                                        "key": "kv",
                                        "value": {
                                            "kvlistValue": {
                                                "values": [{"key": "a", "value": {"stringValue": "b"}}]
                                            }
                                        },
                                    },
                                    {"key": "raw", "value": {"bytesValue": "AQI="}},
                                    {"key": "empty", "value": {}},
                                ],
                            }
                        ],
                    }
                ],
            }
        ]
    }


def test_json_attribute_values_ids_and_times() -> None:
    [rs] = decode_export(orjson.dumps(_json_export()), JSON, None)
    [span] = rs["scopeSpans"][0]["spans"]
    assert span["traceId"] == TRACE_ID and span["spanId"] == "b7ad6b7169203331"  # hex ids lower-cased
    assert span["parentSpanId"] is None
    assert span["kind"] == 2 and span["status"] == {"code": 2, "message": "bad"}
    assert span["startTimeUnixNano"] == T0 + 999_999
    assert span["endTimeUnixNano"] == (0x1849E6A5 << 32) + 0x2A4C0000
    a = span["attributes"]
    assert a["s"] == "text" and a["i"] == 9007199254740993 and a["neg"] == -1 and a["big"] == 2**32 + 1
    assert a["d"] == 1.25 and a["nan"] == "NaN" and a["b"] is False
    assert a["arr"] == [1, ["x"]]
    assert json.loads(a["kv"]) == {"kvlistValue": {"values": [{"key": "a", "value": {"stringValue": "b"}}]}}
    assert json.loads(a["raw"]) == {"bytesValue": "AQI="}
    assert a["empty"] is None

    events = spans_to_events([rs], NOW_MS)
    assert_all_valid(events)
    [obs] = observations(events)
    # ns floored to ms: T0 + 999_999 ns is still .000
    assert obs["body"]["startTime"] == ms("2025-06-15T15:06:40.000Z")
    assert obs["body"]["level"] == "ERROR" and obs["body"]["statusMessage"] == "bad"
    assert obs["body"]["metadata"]["attributes"]["i"] == "9007199254740993"
    assert obs["body"]["metadata"]["attributes"]["b"] == "false"


def test_protobuf_attribute_values() -> None:
    span = Span(
        trace_id=bytes.fromhex(TRACE_ID),
        span_id=bytes.fromhex("b7ad6b7169203331"),
        start_time_unix_nano=T0,
        attributes=[
            kv("i", int_value=-5),
            kv("zero", int_value=0),
            kv("empty", string_value=""),
            kv("inf", double_value=float("inf")),
            kv("b", bool_value=True),
            kv("raw", bytes_value=b"\x01\x02"),
        ],
    )
    body = ExportTraceServiceRequest(
        resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=[span])])]
    ).SerializeToString()
    [rs] = decode_export(body, PROTO, None)
    [decoded] = rs["scopeSpans"][0]["spans"]
    a = decoded["attributes"]
    assert a == {
        "i": -5,
        "zero": 0,
        "empty": "",
        "inf": "Infinity",
        "b": True,
        "raw": '{"bytesValue":"AQI="}',
    }
    assert decoded["endTimeUnixNano"] is None and decoded["parentSpanId"] is None
