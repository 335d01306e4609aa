"""Malformed OTLP exports over real HTTP: each is a 400 {"error": ...} (401 without valid auth) and
leaves nothing behind, not even the valid spans of the same export; the server keeps working after.
"""

from __future__ import annotations

import gzip
import json
import uuid
import zlib

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

pytestmark = pytest.mark.slow

OTEL = "/api/public/otel/v1/traces"
PLAIN = "/v1/traces"


def _ids() -> tuple[str, str, str]:
    return uuid.uuid4().hex, uuid.uuid4().hex[:16], uuid.uuid4().hex[:16]


def json_span(trace_id: str, span_id: str | None, *, parent: str | None = None, name: str = "ok") -> dict:
    span = {
        "traceId": trace_id,
        "name": name,
        "kind": 1,
        "startTimeUnixNano": "1700000000000000000",
        "endTimeUnixNano": "1700000001000000000",
        "attributes": [
            {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o"}},
            {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "10"}},
        ],
    }
    if span_id is not None:
        span["spanId"] = span_id
    if parent is not None:
        span["parentSpanId"] = parent
    return span


def json_export(*spans: dict, **scope_overrides) -> dict:
    scope = {"scope": {"name": "bad-input-test"}, "spans": list(spans), **scope_overrides}
    return {"resourceSpans": [{"resource": {"attributes": []}, "scopeSpans": [scope]}]}


def proto_export(trace_id: str, *span_ids: str) -> bytes:
    req = ExportTraceServiceRequest()
    ss = req.resource_spans.add().scope_spans.add()
    ss.scope.name = "bad-input-test"
    for sid in span_ids:
        sp = ss.spans.add()
        sp.trace_id = bytes.fromhex(trace_id)
        sp.span_id = bytes.fromhex(sid) if sid else b""
        sp.name = "proto-span"
        sp.start_time_unix_nano = 1_700_000_000_000_000_000
        sp.end_time_unix_nano = 1_700_000_001_000_000_000
        attr = sp.attributes.add()
        attr.key = "gen_ai.request.model"
        attr.value.string_value = "gpt-4o"
    return req.SerializeToString()


def post(
    server,
    path: str,
    body: bytes,
    content_type: str,
    encoding: str | None = None,
    auth: bool = True,
    extra: dict | None = None,
) -> httpx.Response:
    headers = {"Content-Type": content_type}
    if encoding:
        headers["Content-Encoding"] = encoding
    if auth:
        headers.update(server.basic_header)
    headers.update(extra or {})
    return httpx.post(server.url + path, content=body, headers=headers, timeout=30)


def assert_400(r: httpx.Response, fragment: str) -> None:
    assert r.status_code == 400, (r.status_code, r.text)
    body = r.json()
    assert set(body) == {"error"} and fragment in body["error"], body


def assert_nothing_stored(server, trace_id: str, *span_ids: str) -> None:
    assert httpx.get(f"{server.url}/api/public/traces/{trace_id}", auth=server.auth).status_code == 404
    for sid in span_ids:
        r = httpx.get(f"{server.url}/api/public/observations/{sid}", auth=server.auth)
        assert r.status_code == 404, (sid, r.text)
    listed = httpx.get(
        f"{server.url}/api/public/v2/observations", params={"traceId": trace_id}, auth=server.auth
    )
    assert listed.status_code == 200 and listed.json()["data"] == []


def test_malformed_exports_are_400_and_store_nothing(server):
    # protobuf: truncated body
    tid, good, _ = _ids()
    body = proto_export(tid, good)
    for path in (OTEL, PLAIN):
        assert_400(
            post(server, path, body[: len(body) - 7], "application/x-protobuf"),
            "Failed to parse OTel Protobuf Trace",
        )
    assert_nothing_stored(server, tid, good)

    # protobuf: one span without a span id next to a valid one
    tid, good, _ = _ids()
    assert_400(post(server, OTEL, proto_export(tid, good, ""), "application/x-protobuf"), "spanId")
    assert_nothing_stored(server, tid, good)

    # wrong / missing content type
    tid, good, _ = _ids()
    payload = json.dumps(json_export(json_span(tid, good))).encode()
    for ctype in ("text/plain", "application/xml", ""):
        assert_400(post(server, OTEL, payload, ctype), "Invalid content type")
    assert_nothing_stored(server, tid, good)

    # broken compression: garbage, a truncated gzip stream, a coding we do not speak, deflate garbage
    zipped = gzip.compress(payload)
    assert_400(
        post(server, OTEL, b"definitely not gzip", "application/json", "gzip"),
        "Failed to decompress request body",
    )
    assert_400(
        post(server, OTEL, zipped[:-12], "application/json", "gzip"), "Failed to decompress request body"
    )
    assert_400(post(server, PLAIN, zipped, "application/json", "br"), "Failed to decompress request body")
    assert_400(
        post(server, OTEL, zlib.compress(payload)[:-5], "application/json", "deflate"),
        "Failed to decompress request body",
    )
    # a body that is not compressed although it says so
    assert_400(post(server, OTEL, payload, "application/json", "gzip"), "Failed to decompress request body")
    assert_nothing_stored(server, tid, good)

    # JSON that does not parse, or is not an object
    assert_400(
        post(server, OTEL, b'{"resourceSpans": [', "application/json"), "Failed to parse OTel JSON Trace"
    )
    assert_400(post(server, OTEL, b"[1, 2]", "application/json"), "Failed to parse OTel JSON Trace")

    # OTLP/JSON: a span without spanId / with an unusable traceId next to a valid span
    tid, good, _ = _ids()
    bad_exports = [
        json_export(json_span(tid, good), json_span(tid, None, name="no-span-id")),
        json_export(json_span(tid, good), {**json_span(tid, "ab" * 8), "traceId": 12345}),
        json_export(json_span(tid, good), {**json_span(tid, "cd" * 8), "traceId": ""}),
        json_export(json_span(tid, good), {**json_span(tid, "ef" * 8), "parentSpanId": {"not": "an id"}}),
        # structure that is not an array where OTLP says array (typical of logs sent to /v1/traces)
        json_export(spans={"0": json_span(tid, good)}),
        json_export(json_span(tid, good), {**json_span(tid, "12" * 8), "attributes": {"k": "v"}}),
        json_export(json_span(tid, good), {**json_span(tid, "34" * 8), "events": "boom"}),
        {"resourceSpans": [{"scopeSpans": {"spans": [json_span(tid, good)]}}]},
        {"resourceSpans": {"0": {}}},
        # decodes, but the span id is beyond what the store takes (ids are 1..800 characters)
        json_export(json_span(tid, good), json_span(tid, "ab" * 450, name="huge-id")),
    ]
    for export in bad_exports:
        for path in (OTEL, PLAIN):
            r = post(server, path, json.dumps(export).encode(), "application/json")
            assert r.status_code == 400 and set(r.json()) == {"error"}, (export, r.status_code, r.text)
    # the same rejections when the body is gzip-compressed
    r = post(server, OTEL, gzip.compress(json.dumps(bad_exports[0]).encode()), "application/json", "gzip")
    assert_400(r, "spanId")
    assert_nothing_stored(server, tid, good)

    # an unsupported ingestion version header
    tid, good, _ = _ids()
    r = post(
        server,
        OTEL,
        json.dumps(json_export(json_span(tid, good))).encode(),
        "application/json",
        extra={"x-langfuse-ingestion-version": "5"},
    )
    assert_400(r, "x-langfuse-ingestion-version")
    assert_nothing_stored(server, tid, good)


def test_missing_or_invalid_auth_is_401(server):
    tid, good, _ = _ids()
    payload = json.dumps(json_export(json_span(tid, good))).encode()
    for path in (OTEL, PLAIN):
        assert post(server, path, payload, "application/json", auth=False).status_code == 401
        wrong = {"Authorization": "Basic " + "cGstbGYteDpzay1sZi15"}  # pk-lf-x:sk-lf-y
        assert post(server, path, payload, "application/json", auth=False, extra=wrong).status_code == 401
        bearer = {"Authorization": f"Bearer {server.public_key}"}  # a public key alone may only post scores
        assert post(server, path, payload, "application/json", auth=False, extra=bearer).status_code in (
            401,
            403,
        )
        # auth is checked before the body is even looked at
        assert post(server, path, b"garbage", "text/plain", auth=False).status_code == 401
    assert_nothing_stored(server, tid, good)


def test_server_stays_healthy_and_a_fixed_retry_is_stored_in_full(server):
    """A refused export must not leave state behind that changes how its corrected retry is stored."""
    tid, child, parent = _ids()
    # the root span (parent) is never exported here, as with a trace started in another service
    rejected = json_export(json_span(tid, child, parent=parent), json_span(tid, "ab" * 450, name="huge-id"))
    assert post(server, OTEL, json.dumps(rejected).encode(), "application/json").status_code == 400
    fixed = json_export(json_span(tid, child, parent=parent))
    r = post(server, OTEL, json.dumps(fixed).encode(), "application/json")
    assert r.status_code == 200 and r.json() == {}, r.text
    trace = httpx.get(f"{server.url}/api/public/traces/{tid}", auth=server.auth)
    assert trace.status_code == 200, trace.text
    [obs] = trace.json()["observations"]
    assert obs["id"] == child and obs["parentObservationId"] == parent and obs["type"] == "GENERATION"

    # protobuf on the plain path, and an empty export
    tid, good, _ = _ids()
    r = post(server, PLAIN, gzip.compress(proto_export(tid, good)), "application/x-protobuf", "gzip")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/x-protobuf")
    assert httpx.get(f"{server.url}/api/public/observations/{good}", auth=server.auth).status_code == 200
    for empty in (b"{}", b'{"resourceSpans": []}'):
        r = post(server, OTEL, empty, "application/json")
        assert r.status_code == 200 and r.json() == {}
    assert post(server, OTEL, b"", "application/x-protobuf").status_code == 200
