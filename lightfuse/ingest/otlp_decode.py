"""Decode an OTLP/HTTP trace export (protobuf or JSON, optionally compressed) into plain dicts.

The output is one normalised shape for both wire formats so the span mapper never has to care
which one arrived:

    [{"resource": {"attributes": {key: value}},
      "scopeSpans": [{"scope": {"name": str, "version": str, "attributes": {key: value}},
                      "spans": [{"traceId": hex, "spanId": hex, "parentSpanId": hex | None,
                                 "name": str, "kind": int,
                                 "startTimeUnixNano": int | None, "endTimeUnixNano": int | None,
                                 "attributes": {key: value},
                                 "events": [{"name": str, "timeUnixNano": int | None,
                                             "attributes": {key: value}}],
                                 "status": {"code": int, "message": str}}]}]}]

Attributes become a dict (a later duplicate key wins, as a left-to-right fold would) with values
decoded per api-semantics 4.2. Times of 0 / absent are None, because proto3 cannot tell "unset"
from 0 and no real span starts at the epoch.

Every failure - including ones we did not foresee - surfaces as OtlpDecodeError, since this runs
on untrusted bytes straight off the network and the HTTP layer maps that one type to a 400.
"""

from __future__ import annotations

import math
import zlib
from typing import Any

import orjson
from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

__all__ = ["OtlpDecodeError", "decode_export", "MAX_DECOMPRESSED_BYTES"]

# A gzip bomb turns a 4 MB body into gigabytes; nothing legitimate comes close to this.
MAX_DECOMPRESSED_BYTES = 256 * 1024 * 1024

MSG_CONTENT_TYPE = "Invalid content type"
MSG_READ = "Failed to read request body"
MSG_DECOMPRESS = "Failed to decompress request body"
MSG_PROTOBUF = "Failed to parse OTel Protobuf Trace"
MSG_JSON = "Failed to parse OTel JSON Trace"


class OtlpDecodeError(ValueError):
    """The export cannot be accepted; ``message`` is the client-facing error text."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def decode_export(
    body: bytes,
    content_type: str,
    content_encoding: str | None,
    *,
    max_decompressed_bytes: int = MAX_DECOMPRESSED_BYTES,
) -> list[dict]:
    """Decode one ExportTraceServiceRequest body into normalised resourceSpans dicts."""
    ctype = content_type.lower() if isinstance(content_type, str) else ""
    if "application/x-protobuf" in ctype:
        is_json = False
    elif "application/json" in ctype:
        is_json = True
    else:
        raise OtlpDecodeError(MSG_CONTENT_TYPE)
    if isinstance(body, (bytearray, memoryview)):
        body = bytes(body)
    if not isinstance(body, bytes):
        raise OtlpDecodeError(MSG_READ)

    try:
        raw = _decompress(body, content_encoding, max_decompressed_bytes)
    except OtlpDecodeError:
        raise
    except Exception as exc:  # e.g. MemoryError from a hostile stream
        raise OtlpDecodeError(MSG_DECOMPRESS) from exc
    try:
        return _decode_json(raw) if is_json else _decode_protobuf(raw)
    except OtlpDecodeError:
        raise
    except Exception as exc:  # any surprise on hostile input is still a 400
        raise OtlpDecodeError(MSG_JSON if is_json else MSG_PROTOBUF) from exc


# --------------------------------------------------------------------------------------------
# decompression


def _decompress(body: bytes, content_encoding: str | None, limit: int) -> bytes:
    if not content_encoding:
        return body
    codings = [c.strip().lower() for c in content_encoding.split(",")]
    # Content-Encoding lists codings in the order they were applied, so undo them backwards.
    for coding in reversed(codings):
        if coding in ("", "identity"):
            continue
        if coding in ("gzip", "x-gzip"):
            body = _inflate(body, 16 + zlib.MAX_WBITS, limit, multi_member=True)
        elif coding == "deflate":
            # RFC 9110 "deflate" is zlib-wrapped, but some clients send a raw deflate stream.
            try:
                body = _inflate(body, zlib.MAX_WBITS, limit, multi_member=False)
            except OtlpDecodeError:
                body = _inflate(body, -zlib.MAX_WBITS, limit, multi_member=False)
        else:
            raise OtlpDecodeError(MSG_DECOMPRESS)
    return body


def _inflate(data: bytes, wbits: int, limit: int, *, multi_member: bool) -> bytes:
    out: list[bytes] = []
    total = 0
    try:
        while True:
            d = zlib.decompressobj(wbits)
            chunk = d.decompress(data, limit - total + 1)
            total += len(chunk)
            out.append(chunk)
            if total > limit or d.unconsumed_tail:
                raise OtlpDecodeError(MSG_DECOMPRESS)
            if not d.eof:  # truncated stream
                raise OtlpDecodeError(MSG_DECOMPRESS)
            data = d.unused_data
            # gzip allows concatenated members, so more data must be another member (zero padding
            # some proxies append excepted); bytes after a deflate stream are ignored.
            if not data or not multi_member or not data.strip(b"\x00"):
                break
    except zlib.error as exc:
        raise OtlpDecodeError(MSG_DECOMPRESS) from exc
    return b"".join(out)


# --------------------------------------------------------------------------------------------
# protobuf


def _non_finite(x: float) -> float | str:
    # JSON has no NaN/Infinity; use the same spellings OTLP/JSON uses so both paths agree.
    if math.isnan(x):
        return "NaN"
    return "Infinity" if x > 0 else "-Infinity"


def _pb_value(v: Any) -> Any:
    kind = v.WhichOneof("value")
    if kind == "string_value":
        return v.string_value
    if kind == "int_value":
        return v.int_value
    if kind == "double_value":
        d = v.double_value
        return d if math.isfinite(d) else _non_finite(d)
    if kind == "bool_value":
        return v.bool_value
    if kind == "array_value":
        return [_pb_value(x) for x in v.array_value.values]
    if kind is None:
        return None
    # kvlist/bytes: 4.2 keeps the raw AnyValue as a JSON string; OTLP/JSON is its canonical form.
    return orjson.dumps(MessageToDict(v)).decode()


def _pb_attrs(kvs: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kv in kvs:
        v = kv.value
        # Most attribute values are non-empty strings. Reading string_value first and only asking
        # WhichOneof (about 2.5x the cost of a field read with upb) when it is empty saves ~20% of
        # the whole decode on typical LLM spans.
        s = v.string_value
        if s:
            out[kv.key] = s
            continue
        # Same trick for ints: a non-zero int_value can only mean the int member is set.
        i = v.int_value
        if i:
            out[kv.key] = i
            continue
        kind = v.WhichOneof("value")
        if kind == "int_value":
            out[kv.key] = v.int_value
        elif kind == "string_value":
            out[kv.key] = ""
        else:
            out[kv.key] = _pb_value(v)
    return out


def _pb_span(sp: Any) -> dict:
    tid = sp.trace_id
    sid = sp.span_id
    if not tid or not sid:
        raise OtlpDecodeError(
            "Invalid OTel trace: span without traceId or spanId (are these logs sent to the traces endpoint?)"
        )
    psid = sp.parent_span_id
    pb_events = sp.events
    events = (
        [
            {
                "name": ev.name,
                "timeUnixNano": ev.time_unix_nano or None,
                "attributes": _pb_attrs(ev.attributes),
            }
            for ev in pb_events
        ]
        if pb_events
        else []
    )
    if sp.HasField("status"):
        st = sp.status
        status = {"code": st.code, "message": st.message}
    else:
        status = {"code": 0, "message": ""}
    return {
        "traceId": tid.hex(),
        "spanId": sid.hex(),
        # An all-zero parent is OTel's "invalid span id", i.e. no parent; some exporters send it.
        "parentSpanId": psid.hex() if psid and psid.strip(b"\0") else None,
        "name": sp.name,
        "kind": sp.kind,
        "startTimeUnixNano": sp.start_time_unix_nano or None,
        "endTimeUnixNano": sp.end_time_unix_nano or None,
        "attributes": _pb_attrs(sp.attributes),
        "events": events,
        "status": status,
    }


def _decode_protobuf(raw: bytes) -> list[dict]:
    req = ExportTraceServiceRequest()
    try:
        req.ParseFromString(raw)
    except Exception as exc:  # DecodeError, RecursionError, ...
        raise OtlpDecodeError(MSG_PROTOBUF) from exc

    result: list[dict] = []
    for rs in req.resource_spans:
        scope_spans: list[dict] = []
        for ss in rs.scope_spans:
            sc = ss.scope
            scope_spans.append(
                {
                    "scope": {"name": sc.name, "version": sc.version, "attributes": _pb_attrs(sc.attributes)},
                    "spans": [_pb_span(sp) for sp in ss.spans],
                }
            )
        result.append(
            {"resource": {"attributes": _pb_attrs(rs.resource.attributes)}, "scopeSpans": scope_spans}
        )
    return result


# --------------------------------------------------------------------------------------------
# JSON


class _Invalid(Exception):
    """Internal: a structural defect that rejects the whole export."""


def _json_int(v: Any) -> int | float | str | None:
    """int64 in OTLP/JSON: a number, a decimal string, or a protobufjs Long {high, low}."""
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, int):
        return v
    if isinstance(v, float):
        return int(v) if v.is_integer() else v
    if isinstance(v, str):
        try:
            return int(v.strip())
        except ValueError:
            try:
                f = float(v)
            except ValueError:
                return v
            return int(f) if f.is_integer() else v
    if isinstance(v, dict) and "low" in v and "high" in v:
        high, low = v["high"], v["low"]
        if isinstance(high, int) and isinstance(low, int) and not isinstance(high, bool):
            if v.get("unsigned"):
                return ((high & 0xFFFFFFFF) << 32) | (low & 0xFFFFFFFF)
            # Two's complement: high is the signed upper word, low always counts as unsigned.
            return (high << 32) + (low & 0xFFFFFFFF)
    return None


def _json_double(v: Any) -> Any:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return v
    if isinstance(v, str):
        if v in ("NaN", "Infinity", "-Infinity"):
            return v
        try:
            f = float(v)
        except ValueError:
            return v
        return f if math.isfinite(f) else v
    return v


def _json_value(v: Any) -> Any:
    if not isinstance(v, dict):
        return None
    if "stringValue" in v:
        return v["stringValue"]
    if "doubleValue" in v:
        return _json_double(v["doubleValue"])
    if "boolValue" in v:
        return v["boolValue"]
    if "intValue" in v:
        return _json_int(v["intValue"])
    arr = v.get("arrayValue")
    if isinstance(arr, dict) and isinstance(arr.get("values"), list):
        return [_json_value(x) for x in arr["values"]]
    if not v:
        return None
    return orjson.dumps(v).decode()


def _json_attrs(kvs: Any, where: str) -> dict[str, Any]:
    if kvs is None:
        return {}
    if not isinstance(kvs, list):
        raise _Invalid(f"{where}.attributes is not an array")
    out: dict[str, Any] = {}
    for kv in kvs:
        if isinstance(kv, dict):
            key = kv.get("key")
            if isinstance(key, str):
                out[key] = _json_value(kv.get("value"))
    return out


def _json_list(v: Any, where: str) -> list:
    if v is None:
        return []
    if not isinstance(v, list):
        raise _Invalid(f"{where} is not an array")
    return v


def _json_id(v: Any) -> str | None:
    """Ids as OTLP/JSON sends them (hex strings), plus the byte shapes JS/Python clients leak."""
    if isinstance(v, str):
        if not v:
            return None
        # Hex is case-insensitive, so fold it to match protobuf ids; anything else (base64 from a
        # non-conforming exporter) is kept verbatim because folding would corrupt it.
        try:
            bytes.fromhex(v)
        except ValueError:
            return v
        return v.lower()
    if isinstance(v, dict) and v.get("type") == "Buffer":
        v = v.get("data")
    if isinstance(v, list) and v and all(isinstance(b, int) and 0 <= b <= 255 for b in v):
        return bytes(v).hex()
    return None


def _json_time(v: Any) -> int | None:
    n = _json_int(v) if v is not None else None
    if isinstance(n, float) and math.isfinite(n):
        n = int(n)
    if not isinstance(n, int) or n <= 0:
        return None
    return n


def _json_code(v: Any) -> int:
    if isinstance(v, int) and not isinstance(v, bool):
        return v
    if isinstance(v, str):
        return {"STATUS_CODE_UNSET": 0, "STATUS_CODE_OK": 1, "STATUS_CODE_ERROR": 2}.get(
            v.upper(), int(v) if v.isdigit() else 0
        )
    return 0


def _decode_json(raw: bytes) -> list[dict]:
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise OtlpDecodeError(MSG_JSON) from exc
    if not isinstance(doc, dict):
        raise OtlpDecodeError(MSG_JSON)
    try:
        return _convert_json(doc)
    except _Invalid as exc:
        raise OtlpDecodeError(f"Invalid OTel trace: {exc}") from None


def _convert_json(doc: dict) -> list[dict]:
    result: list[dict] = []
    for ri, rs in enumerate(_json_list(doc.get("resourceSpans"), "resourceSpans")):
        if not isinstance(rs, dict):
            continue
        rwhere = f"resourceSpans[{ri}]"
        resource = rs.get("resource")
        res_attrs = (
            _json_attrs(resource.get("attributes"), f"{rwhere}.resource")
            if isinstance(resource, dict)
            else {}
        )
        scope_spans: list[dict] = []
        for si, ss in enumerate(_json_list(rs.get("scopeSpans"), f"{rwhere}.scopeSpans")):
            if not isinstance(ss, dict):
                continue
            swhere = f"{rwhere}.scopeSpans[{si}]"
            scope = raw_scope if isinstance(raw_scope := ss.get("scope"), dict) else {}
            name, version = scope.get("name"), scope.get("version")
            spans: list[dict] = []
            for pi, sp in enumerate(_json_list(ss.get("spans"), f"{swhere}.spans")):
                spans.append(_convert_json_span(sp, f"{swhere}.spans[{pi}]"))
            scope_spans.append(
                {
                    "scope": {
                        "name": name if isinstance(name, str) else "",
                        "version": version if isinstance(version, str) else "",
                        "attributes": _json_attrs(scope.get("attributes"), f"{swhere}.scope"),
                    },
                    "spans": spans,
                }
            )
        result.append({"resource": {"attributes": res_attrs}, "scopeSpans": scope_spans})
    return result


def _convert_json_span(sp: Any, where: str) -> dict:
    if not isinstance(sp, dict):
        raise _Invalid(f"{where} is not an object")
    tid = _json_id(sp.get("traceId"))
    sid = _json_id(sp.get("spanId"))
    if tid is None or sid is None:
        raise _Invalid(f"{where} has no valid traceId/spanId")
    raw_parent = sp.get("parentSpanId")
    parent = _json_id(raw_parent) if raw_parent else None
    if raw_parent and parent is None:
        raise _Invalid(f"{where}.parentSpanId is not an id")
    if parent is not None and not parent.strip("0"):
        parent = None  # all-zero: OTel's invalid span id, meaning "no parent"
    events = []
    for ei, ev in enumerate(_json_list(sp.get("events"), f"{where}.events")):
        if not isinstance(ev, dict):
            continue
        ename = ev.get("name")
        events.append(
            {
                "name": ename if isinstance(ename, str) else "",
                "timeUnixNano": _json_time(ev.get("timeUnixNano")),
                "attributes": _json_attrs(ev.get("attributes"), f"{where}.events[{ei}]"),
            }
        )
    status = raw_status if isinstance(raw_status := sp.get("status"), dict) else {}
    message = status.get("message")
    name = sp.get("name")
    kind = sp.get("kind")
    return {
        "traceId": tid,
        "spanId": sid,
        "parentSpanId": parent,
        "name": name if isinstance(name, str) else "",
        "kind": _span_kind(kind),
        "startTimeUnixNano": _json_time(sp.get("startTimeUnixNano")),
        "endTimeUnixNano": _json_time(sp.get("endTimeUnixNano")),
        "attributes": _json_attrs(sp.get("attributes"), where),
        "events": events,
        "status": {
            "code": _json_code(status.get("code")),
            "message": message if isinstance(message, str) else "",
        },
    }


_SPAN_KINDS = {
    "SPAN_KIND_UNSPECIFIED": 0,
    "SPAN_KIND_INTERNAL": 1,
    "SPAN_KIND_SERVER": 2,
    "SPAN_KIND_CLIENT": 3,
    "SPAN_KIND_PRODUCER": 4,
    "SPAN_KIND_CONSUMER": 5,
}


def _span_kind(v: Any) -> int:
    if isinstance(v, int) and not isinstance(v, bool):
        return v
    if isinstance(v, str):
        return _SPAN_KINDS.get(v.upper(), int(v) if v.isdigit() else 0)
    return 0
