"""Turn decoded OTLP spans into Langfuse batch-ingestion events (api-semantics 4.3).

Input is the output of ``otlp_decode.decode_export``; output is a list of events in the shape
an SDK posts to ``POST /api/public/ingestion``, so OTLP and the batch API share one validation
and merge pipeline. One difference: times (the envelope timestamp and every time field of a
body) are epoch milliseconds, not ISO strings, because the validator would only parse the ISO
text straight back; validate them with ``validate_event(..., epoch_ms_times=True)``.

Per span:
* one observation event ``<type>-create`` (envelope timestamp = now), and
* a ``trace-create`` event (envelope timestamp = span start): *full* for root spans (no parent,
  or ``langfuse.internal.as_root``), *partial* for spans carrying trace-level attributes,
  *shallow* ({id, timestamp, environment}) otherwise. A trace only needs one shallow event, and
  none at all when a full or partial one for it is in the same export.

Event ids are derived from (trace id, span id, kind). Re-exporting a span (client retry after a
timeout, a collector replay) therefore replaces its earlier events instead of adding copies; the
pipeline still merges by ``body.id`` either way.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any, NamedTuple

from lightfuse.ingest import otlp_fields as f
from lightfuse.ingest.otlp_io import extract_io
from lightfuse.ingest.otlp_obstype import OBSERVATION_TYPES, observation_type
from lightfuse.ingest.otlp_scan import AttributeScan, scan_attributes
from lightfuse.ingest.otlp_usage import extract_cost_details, extract_usage_details
from lightfuse.ingest.otlp_util import valid_ms

__all__ = ["MappedExport", "event_id", "map_export", "spans_to_events"]

_TRACE, _PARTIAL, _SHALLOW = "full", "partial", "shallow"
_EVENT_TYPES = {t: f"{t.lower()}-create" for t in OBSERVATION_TYPES}
_EMPTY: dict[str, Any] = {}
_MAX_TRACE_NAME = 1000
_MAX_NS = 253_402_300_799_999_999_999  # 9999-12-31: later times are broken clocks, treated as absent


def event_id(trace_id: str, span_id: str, kind: str) -> str:
    """Stable event id for one (span, event kind).

    Hex ids are used as they are (cheap, and readable in the raw event log). Ids from OTLP/JSON
    are arbitrary strings, so anything that could break the envelope limits (<= 800 chars, no CR)
    is hashed instead.
    """
    if len(trace_id) + len(span_id) <= 256 and "\r" not in trace_id and "\r" not in span_id:
        return f"{trace_id}-{span_id}-{kind}"
    digest = hashlib.blake2b(f"{trace_id}\x00{span_id}".encode(), digest_size=16).hexdigest()
    return f"h{digest}-{kind}"


def spans_to_events(
    resource_spans: list[dict],
    now_ms: int,
    *,
    claim_trace: Callable[[str], bool] | None = None,
) -> list[dict]:
    """Map decoded resourceSpans to Langfuse ingestion events (``map_export`` with ``claim_trace`` applied).

    ``claim_trace(trace_id)`` (optional) is called once per trace id in the export and returns
    True when the trace was not seen recently (e.g. a SET NX with a 10-minute TTL). Shallow trace
    events are only emitted for claimed traces: every trace-create resets ``public`` to false in
    the merge, so re-sending shallow events for a trace whose root arrived earlier would undo it.
    Without it, every export that lacks a full/partial event for a trace carries one shallow event.
    """
    mapped = map_export(resource_spans, now_ms)
    if claim_trace is None:
        return mapped.events
    dropped = mapped.unclaimed_shallow_ids(claim_trace)
    return [e for e in mapped.events if e["id"] not in dropped] if dropped else mapped.events


class MappedExport(NamedTuple):
    """An export's events, with what applying trace claims needs: every trace id in export order and the id of
    each trace's shallow event (a trace whose export carries a full or partial event has none)."""

    events: list[Any]
    trace_ids: list[str]
    shallow_event_ids: dict[str, str]

    def unclaimed_shallow_ids(self, claim_trace: Callable[[str], bool]) -> set[str]:
        """Claim every trace of the export; the ids of the shallow events of traces that were not claimed."""
        shallow = self.shallow_event_ids
        return {shallow[tid] for tid in self.trace_ids if not claim_trace(tid) and tid in shallow}


def map_export(resource_spans: list[dict], now_ms: int) -> MappedExport:
    """Map decoded resourceSpans to Langfuse ingestion events; trace claims are left to the caller."""
    if not valid_ms(now_ms):
        raise ValueError("now_ms out of range")
    events: list[dict | None] = []
    index_by_id: dict[str, int] = {}
    # trace id -> (kind of the best trace event so far, its index, its start ms)
    traces: dict[str, tuple[str, int, int]] = {}

    def emit(event: dict) -> int:
        # Duplicate spans in one export: the last copy wins, as a re-export would.
        eid = event["id"]
        previous = index_by_id.get(eid)
        if previous is not None:
            events[previous] = event
            return previous
        index = index_by_id[eid] = len(events)
        events.append(event)
        return index

    for rs in resource_spans:
        resource = (rs.get("resource") or _EMPTY).get("attributes") or _EMPTY
        res_ctx = _ResourceContext(resource)
        for ss in rs.get("scopeSpans") or ():
            scope = ss.get("scope") or _EMPTY
            scope_ctx = _ScopeContext(scope)
            for span in ss.get("spans") or ():
                kind, observation, trace_body, start = _map_span(span, res_ctx, scope_ctx, now_ms)
                obs_body = observation["body"]
                tid = obs_body["traceId"]
                best = traces.get(tid)
                if kind != _SHALLOW:
                    if best is not None and best[0] == _SHALLOW:
                        events[best[1]] = None
                    assert trace_body is not None  # _map_span gives a trace body for every kind but _SHALLOW
                    idx = emit(_trace_event(tid, obs_body["id"], trace_body))
                    traces[tid] = (kind, idx, start)
                elif best is None or (best[0] == _SHALLOW and start < best[2]):
                    # A trace needs one shallow event at most (the earliest span's), and none
                    # once a full or partial one exists; skip building the ones that would go.
                    if best is not None:
                        events[best[1]] = None
                    shallow = {
                        "id": tid,
                        "timestamp": obs_body["startTime"],
                        "environment": obs_body["environment"],
                    }
                    idx = emit(_trace_event(tid, obs_body["id"], shallow))
                    traces[tid] = (_SHALLOW, idx, start)
                oid = observation["id"]
                if oid in index_by_id:
                    events[index_by_id[oid]] = observation
                else:
                    index_by_id[oid] = len(events)
                    events.append(observation)
    shallow = {
        tid: event["id"]
        for tid, (kind, idx, _start) in traces.items()
        if kind == _SHALLOW and (event := events[idx]) is not None
    }
    return MappedExport([e for e in events if e is not None], list(traces), shallow)


def _trace_event(trace_id: str, span_id: str, body: dict[str, Any]) -> dict[str, Any]:
    # The envelope timestamp of a trace event is the span start, which orders the merge.
    return {
        "id": event_id(trace_id, span_id, "trace"),
        "type": "trace-create",
        "timestamp": body["timestamp"],
        "body": body,
    }


class _ResourceContext:
    """Values that depend only on the resource, computed once per resourceSpans entry."""

    __slots__ = ("attrs", "trace_metadata", "environment", "version")

    def __init__(self, attrs: dict[str, Any]) -> None:
        self.attrs = attrs
        self.version = f.version(_EMPTY, attrs)
        # What environment() yields for a span without environment attributes of its own.
        self.environment = f.environment(_EMPTY, attrs)
        self.trace_metadata = f.metadata(attrs, "trace", scan_attributes(attrs, keep_filtered=False).meta)


# Instrumentation scopes whose spans get scope-specific field handling (AI SDK model parameters
# and agent spans, Genkit model names, LiveKit debug levels).
_SPECIAL_SCOPES = frozenset({"ai", "genkit-tracer", "livekit-agents"})


class _ScopeContext:
    __slots__ = ("scope", "name", "version", "is_langfuse_sdk", "json_metadata", "attrs", "plain")

    def __init__(self, scope: dict[str, Any]) -> None:
        self.scope = scope
        self.name = scope.get("name") or ""
        self.version = scope.get("version") or ""
        self.attrs = scope.get("attributes") or {}
        self.is_langfuse_sdk = self.name.startswith("langfuse-sdk")
        # Langfuse SDKs from 5.0 on JSON-encode every dotted metadata value, strings included.
        self.json_metadata = self.is_langfuse_sdk and _major_version(self.version) >= 5
        self.plain = self.name not in _SPECIAL_SCOPES


def _major_version(version: str) -> int:
    head = version.split(".", 1)[0].strip().lstrip("vV")
    return int(head) if head.isdigit() else 0


def _map_span(
    span: dict, res: _ResourceContext, scope: _ScopeContext, now_ms: int
) -> tuple[str, dict, dict | None, int]:
    """(trace event kind, observation event, trace body unless shallow, start ms)"""
    attrs: dict[str, Any] = span.get("attributes") or _EMPTY
    resource = res.attrs
    tid: str = span["traceId"]
    sid: str = span["spanId"]
    parent: str | None = span.get("parentSpanId") or None
    raw_name = span.get("name") or ""
    span_events = span.get("events") or []
    status = span.get("status") or _EMPTY
    start_ns = span.get("startTimeUnixNano")
    end_ns = span.get("endTimeUnixNano")
    start_ms = start_ns // 1_000_000 if type(start_ns) is int and 0 < start_ns <= _MAX_NS else None
    end_ms = end_ns // 1_000_000 if type(end_ns) is int and 0 < end_ns <= _MAX_NS else None
    if start_ms is None:
        start_ms = end_ms if end_ms is not None else now_ms
    if end_ms is None:
        end_ms = start_ms
    scope_name = scope.name

    # Langfuse's own SDK spans carry nothing useful beyond the mapped fields, so no attribute copy.
    scan = scan_attributes(attrs, keep_filtered=not scope.is_langfuse_sdk)
    inp, out = extract_io(attrs, span_events, scope_name, flat=scan.flat)
    obs_type = observation_type(attrs, resource, scope.scope, raw_name)
    obs_metadata = f.metadata(attrs, "observation", scan.meta, json_values=scope.json_metadata)

    model = params = prompt = usage = cost = None
    if scope.plain and attrs.keys().isdisjoint(f.FIELD_KEYS):
        # Fast path: none of the attributes the field mappings read is present (typical for
        # tool/chain spans), so every field takes its default; only key families remain.
        env = res.environment
        name = raw_name
        cst = None
        level = "ERROR" if status.get("code") == 2 else "DEFAULT"
        status_message = status.get("message") or None
        version = res.version
        if scan.params:
            params = f.model_parameters(attrs, scope_name, scan.params)
        if scan.usage:
            usage = extract_usage_details(attrs, scope_name, scan.usage)
            cost = extract_cost_details(attrs)
        is_root = parent is None
        trace_update = scan.trace_meta
    else:
        env = f.environment(attrs, resource)
        name = f.span_name(raw_name, attrs)
        cst = f.completion_start_time(attrs, start_ms)
        level = f.level(attrs, status.get("code") or 0, scope_name, raw_name)
        status_message = f.status_message(attrs, status)
        version = f.version(attrs, resource)
        if not f.is_ai_sdk_agent_span(attrs, scope_name):
            params = f.model_parameters(attrs, scope_name, scan.params)
            model = f.model(attrs, scope_name)
            usage = extract_usage_details(attrs, scope_name, scan.usage)
            cost = extract_cost_details(attrs)
        if obs_type == "GENERATION":
            prompt = f.prompt_link(attrs)
        as_root = attrs.get("langfuse.internal.as_root")
        is_root = parent is None or as_root is True or as_root == "true"
        trace_update = f.has_trace_updates(attrs, scan.trace_meta)

    # ---- observation event
    metadata: dict[str, Any] = {**res.trace_metadata, **obs_metadata}
    if scan.filtered is not None:
        metadata["attributes"] = scan.filtered
    metadata["resourceAttributes"] = resource.copy()
    metadata["scope"] = {"name": scope_name, "version": scope.version, "attributes": scope.attrs.copy()}

    body: dict[str, Any] = {"id": sid, "traceId": tid}
    if parent:
        body["parentObservationId"] = parent
    body["name"] = name
    body["startTime"] = start_ms
    body["endTime"] = end_ms
    body["environment"] = env
    if cst is not None:
        body["completionStartTime"] = cst
    body["metadata"] = metadata
    body["level"] = level
    if status_message is not None:
        body["statusMessage"] = status_message
    if version is not None:
        body["version"] = version
    if params:
        body["modelParameters"] = params
    if model is not None:
        body["model"] = model
    if prompt is not None:
        body["promptName"], body["promptVersion"] = prompt
    if usage:
        body["usageDetails"] = usage
    if cost:
        body["costDetails"] = cost
    if inp is not None:
        body["input"] = inp
    if out is not None:
        body["output"] = out
    observation = {
        "id": event_id(tid, sid, "observation"),
        "type": _EVENT_TYPES.get(obs_type, "span-create"),
        "timestamp": now_ms,
        "body": body,
    }

    # ---- trace event
    kind = _TRACE if is_root else (_PARTIAL if trace_update else _SHALLOW)
    if kind == _SHALLOW:
        return kind, observation, None, start_ms
    trace_body: dict[str, Any] = {"id": tid, "timestamp": start_ms, "environment": env}
    _fill_trace_body(
        trace_body, kind, attrs, scan, res, scope, name, obs_metadata, version, inp, out, span_events
    )
    return kind, observation, trace_body, start_ms


def _fill_trace_body(
    body: dict[str, Any],
    kind: str,
    attrs: dict[str, Any],
    scan: AttributeScan,
    res: _ResourceContext,
    scope: _ScopeContext,
    obs_name: str,
    obs_metadata: dict[str, Any],
    version: str | None,
    obs_input: Any,
    obs_output: Any,
    span_events: list[dict],
) -> None:
    trace_name = attrs.get("langfuse.trace.name")
    name: str | None
    if kind == _TRACE:
        name = trace_name if isinstance(trace_name, str) and trace_name else obs_name
    else:
        name = (trace_name if isinstance(trace_name, str) else str(trace_name)) if trace_name else None
    if name is not None:
        # The ingestion schema caps trace names at 1000 chars; a long span name must not get the
        # whole trace event rejected.
        body["name"] = name[:_MAX_TRACE_NAME]

    metadata: dict[str, Any] = {
        **res.trace_metadata,
        **f.metadata(attrs, "trace", scan.meta, json_values=scope.json_metadata),
    }
    if kind == _TRACE:
        metadata.update(obs_metadata)
        # Only the root keeps the span attributes: a child updating the trace must not replace
        # the root's attribute copy in the key-wise metadata merge.
        if scan.filtered is not None:
            metadata["attributes"] = dict(scan.filtered)
    metadata["resourceAttributes"] = res.attrs.copy()
    metadata["scope"] = {"name": scope.name, "version": scope.version, "attributes": scope.attrs.copy()}
    body["metadata"] = metadata

    if version is not None:
        body["version"] = version
    release = f.release(attrs, res.attrs)
    if release is not None:
        body["release"] = release
    user = f.user_id(attrs)
    if user is not None:
        body["userId"] = user
    session = f.session_id(attrs)
    if session is not None:
        body["sessionId"] = session
    is_public = f.public(attrs)
    if is_public is not None:
        body["public"] = is_public
    tag_list = f.tags(attrs)
    if tag_list:
        body["tags"] = tag_list

    if kind == _TRACE:
        if "langfuse.trace.input" in attrs or "langfuse.trace.output" in attrs:
            inp, out = extract_io(attrs, span_events, scope.name, trace_domain=True, flat=scan.flat)
        else:
            inp, out = obs_input, obs_output  # same rules, same answer: skip the second pass
    else:
        inp, out = attrs.get("langfuse.trace.input"), attrs.get("langfuse.trace.output")
    if inp is not None:
        body["input"] = inp
    if out is not None:
        body["output"] = out
