"""Validation of batch-ingestion events (``POST /api/public/ingestion``): the body schemas and the envelope.

Pure functions only: no I/O, no clock, no randomness. ``validate_event`` turns one untrusted batch element into
a :class:`ValidEvent`, an :class:`EventError` (a per-event 207 entry) or ``None`` (``sdk-log``: reported nowhere).

Validation is hand-written rather than pydantic because it runs once per event on the request path and the
schemas are small: a ``key -> (path, validator)`` table per body type, applied to the keys actually sent. The
field validators (``fields``) return the cleaned value or raise :class:`Invalid`; ``validate_event`` also
catches *any* exception, so that hostile input can never turn into a 500 for the whole batch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lightfuse.services.common.rows import OBSERVATION_TYPES, EntityKind
from lightfuse.services.ingestion.fields import (
    VALIDATORS,
    Invalid,
    Validator,
    normalise_environment,
    parse_iso_timestamp,
    v_any,
    v_epoch_ms,
    v_id,
    v_str,
    v_time,
)

__all__ = [
    "EventError",
    "EVENT_TYPES",
    "ValidEvent",
    "normalise_environment",
    "parse_iso_timestamp",
    "validate_event",
    "without_nul",
]


@dataclass(frozen=True, slots=True)
class ValidEvent:
    id: str  # envelope (event) id
    type: str
    timestamp: int  # envelope timestamp, epoch ms: the merge order key
    kind: EntityKind
    entity_id: str | None  # body.id; None means the pipeline has no grouping key and drops the event
    body: dict[str, Any]
    observation_type: str | None = None


@dataclass(slots=True)
class EventError:
    id: str
    status: int
    message: str
    error: str


# A frozen dataclass __init__ goes through object.__setattr__ per field, which made construction a visible
# share of per-event validation time. Writing the slots through their descriptors is equivalent and ~2x faster.
_set_id, _set_type, _set_ts, _set_kind, _set_entity, _set_body, _set_obs_type = (
    ValidEvent.__dict__[name].__set__
    for name in ("id", "type", "timestamp", "kind", "entity_id", "body", "observation_type")
)


def _make_valid_event(
    event_id: str,
    event_type: str,
    timestamp: int,
    kind: EntityKind,
    entity_id: str | None,
    body: dict[str, Any],
    observation_type: str | None,
) -> ValidEvent:
    event = object.__new__(ValidEvent)
    _set_id(event, event_id)
    _set_type(event, event_type)
    _set_ts(event, timestamp)
    _set_kind(event, kind)
    _set_entity(event, entity_id)
    _set_body(event, body)
    _set_obs_type(event, observation_type)
    return event


def _reduce_valid_event(event: ValidEvent) -> tuple[Any, tuple[Any, ...]]:
    # Validated events cross a process boundary (services/ingestion/otlp_offload.py). A slots dataclass pickles through
    # the generic __getstate__/__setstate__, which call dataclasses.fields() per event; rebuilding from the
    # field tuple through _make_valid_event is several times cheaper on both sides.
    return _make_valid_event, (
        event.id,
        event.type,
        event.timestamp,
        event.kind,
        event.entity_id,
        event.body,
        event.observation_type,
    )


ValidEvent.__reduce__ = _reduce_valid_event  # type: ignore[assignment]


# ---------------------------------------------------------------------------------------------------------
# Body schemas
# ---------------------------------------------------------------------------------------------------------

_Fields = dict[str, tuple[str, Validator]]


def _fields(*specs: str) -> _Fields:
    """Build a body table from "key:validator" words (kept as text so the schemas read like schemas)."""
    table: _Fields = {}
    for spec in specs:
        for word in spec.split():
            key, _, name = word.partition(":")
            table[key] = ("body." + key, VALIDATORS[name])
    return table


# Every field is nullable; `environment` is handled apart (normalised, never rejected); unknown keys are dropped.
_OBSERVATION_COMMON = (
    "id:id traceId:id name:str startTime:time metadata:any input:any output:any level:level "
    "statusMessage:str parentObservationId:str version:str"
)
# usageDetails is a free map: its entries are normalised (never rejected) by normalise_usage.
_USAGE = "usage:usage usageDetails:object costDetails:cost_details"
_TRACE_FIELDS = _fields(
    "id:id timestamp:time name:trace_name userId:str sessionId:str release:str version:str input:any",
    "output:any metadata:any public:bool tags:tags",
)
_EVENT_FIELDS = _fields(_OBSERVATION_COMMON)
_SPAN_FIELDS = _fields(_OBSERVATION_COMMON, "endTime:time")
_GENERATION_FIELDS = _fields(
    _OBSERVATION_COMMON,
    "endTime:time completionStartTime:time model:str modelParameters:model_params promptName:str",
    "promptVersion:int",
    _USAGE,
)
# The legacy body has no environment (-> "default") and only scalar model parameters.
_LEGACY_FIELDS = _fields(
    _OBSERVATION_COMMON,
    "type:legacy_type endTime:time completionStartTime:time model:str modelParameters:legacy_model_params",
    _USAGE,
)
_SCORE_FIELDS = _fields(
    "id:id name:str value:score_value dataType:data_type source:source traceId:str observationId:str",
    "sessionId:str datasetRunId:str configId:str comment:str metadata:any queueId:str executionTraceId:str",
)


def _check_observation_id(body: dict[str, Any]) -> None:
    if body.get("id") is None:
        raise Invalid("body.id: required")


def _check_generation(body: dict[str, Any]) -> None:
    _check_observation_id(body)
    if (body.get("promptName") is None) != (body.get("promptVersion") is None):
        raise Invalid("body: promptName and promptVersion must be set together")


def _check_legacy(body: dict[str, Any]) -> None:
    if body.get("type") is None:
        raise Invalid("body.type: required")


SCORE_SCOPE_MESSAGE = (
    "Provide exactly one of the following: traceId (with optional observationId), sessionId or datasetRunId. "
    "ObservationId requires traceId."
)


def _check_score(body: dict[str, Any]) -> None:
    name = body.get("name")
    if not name:
        raise Invalid("body.name: required, must be a non-empty string")
    value = body.get("value")
    if value is None:
        raise Invalid("body.value: required")
    scopes = bool(body.get("traceId")) + bool(body.get("sessionId")) + bool(body.get("datasetRunId"))
    if scopes != 1 or (body.get("observationId") and not body.get("traceId")):
        raise Invalid(SCORE_SCOPE_MESSAGE)
    data_type = body.get("dataType")
    is_text = isinstance(value, str)
    if data_type == "NUMERIC" and is_text:
        raise Invalid("body.value: NUMERIC scores require a numeric value")
    if data_type == "BOOLEAN" and (is_text or value not in (0.0, 1.0)):
        raise Invalid("body.value: BOOLEAN scores require the number 0 or 1")
    if data_type in ("CATEGORICAL", "CORRECTION", "TEXT") and not is_text:
        raise Invalid(f"body.value: {data_type} scores require a string value")
    if data_type == "CORRECTION" and body.get("configId"):
        raise Invalid("body.configId: CORRECTION scores cannot reference a score config")
    if data_type == "TEXT" and not 1 <= len(value) <= 500:
        raise Invalid("body.value: TEXT scores must be 1 to 500 characters")
    if body.get("source") is None:  # the cleaned body, so consumers never see a missing source
        body["source"] = "API"


# type -> (entity kind, observation type, fields, environment key accepted, cross-field check)
_Spec = tuple[EntityKind, str | None, _Fields, bool, Callable[[dict[str, Any]], None] | None]
_EVENT_SPECS: dict[str, _Spec] = {
    "trace-create": ("trace", None, _TRACE_FIELDS, True, None),
    "score-create": ("score", None, _SCORE_FIELDS, True, _check_score),
    "span-create": ("observation", "SPAN", _SPAN_FIELDS, True, _check_observation_id),
    "span-update": ("observation", "SPAN", _SPAN_FIELDS, True, _check_observation_id),
    "generation-create": ("observation", "GENERATION", _GENERATION_FIELDS, True, _check_generation),
    "generation-update": ("observation", "GENERATION", _GENERATION_FIELDS, True, _check_generation),
    "event-create": ("observation", "EVENT", _EVENT_FIELDS, True, _check_observation_id),
    "observation-create": ("observation", None, _LEGACY_FIELDS, False, _check_legacy),
    "observation-update": ("observation", None, _LEGACY_FIELDS, False, _check_legacy),
}
for _obs_type in OBSERVATION_TYPES:
    if _obs_type not in ("SPAN", "GENERATION", "EVENT"):  # only creates exist for the newer types
        _EVENT_SPECS[_obs_type.lower() + "-create"] = (
            "observation",
            _obs_type,
            _GENERATION_FIELDS,
            True,
            _check_generation,
        )


def _with_epoch_ms_times(spec: _Spec) -> _Spec:
    kind, observation_type, fields, has_environment, check = spec
    fields = {key: (path, v_epoch_ms if fn is v_time else fn) for key, (path, fn) in fields.items()}
    return kind, observation_type, fields, has_environment, check


# The same schemas for mapped events, whose times are epoch ms (see validate_event's epoch_ms_times).
_EVENT_SPECS_EPOCH_MS: dict[str, _Spec] = {t: _with_epoch_ms_times(spec) for t, spec in _EVENT_SPECS.items()}
# every event type the API takes: a bounded label set for the metrics
EVENT_TYPES = frozenset(_EVENT_SPECS)

_SCORES_ONLY_TYPES = frozenset(("score-create", "sdk-log"))
_INTERNAL_ONLY_TYPES = {
    "dataset-run-item-create": "Dataset run item creation is only allowed for internal usage"
}


def _validate_body(body: dict[str, Any], fields: _Fields) -> dict[str, Any]:
    # Walks the sent keys (unknown ones are dropped); absent keys stay absent because the merge tells
    # "absent" from "explicit null". The two commonest validators are inlined: this is the hot loop.
    out: dict[str, Any] = {}
    lookup = fields.get
    for key, value in body.items():
        spec = lookup(key)
        if spec is None:
            continue
        fn = spec[1]
        if value is None or fn is v_any:
            out[key] = value
        elif fn is v_str:
            if value.__class__ is not str:
                raise Invalid(f"{spec[0]}: expected string")
            out[key] = value
        else:
            out[key] = fn(value, spec[0])
    return out


def _error_id(raw: object) -> str:
    if isinstance(raw, dict):
        event_id = raw.get("id")
        if isinstance(event_id, str) and event_id:
            return event_id
    return "unknown"


def _invalid(raw: object, detail: str) -> EventError:
    return EventError(_error_id(raw), 400, "Invalid request data", detail)


def without_nul(value: Any) -> Any:
    """``value`` with NUL characters removed from every string, keys included.

    Postgres text and JSONB cannot hold NUL, and one such event used to fail its whole batch there (the commit
    is shared). Stripping it on every backend keeps what is stored the same on both; Langfuse strips control
    characters from dataset items the same way. Callers run it only when a NUL is present (a cheap byte test).
    """
    if isinstance(value, str):
        return value.replace("\x00", "") if "\x00" in value else value
    if isinstance(value, list):
        return [without_nul(v) for v in value]
    if isinstance(value, dict):
        return {without_nul(k): without_nul(v) for k, v in value.items()}
    return value


def validate_event(
    raw: object, access_level: str, *, epoch_ms_times: bool = False
) -> ValidEvent | EventError | None:
    """Validate one batch element. ``access_level``: "project" (full) or "scores" (public-key Bearer auth).

    ``epoch_ms_times``: the event's times (envelope timestamp and body time fields) are integer epoch
    milliseconds instead of ISO-8601 strings. Internal mappers (OTLP) build events that way; every other field
    is validated exactly as for the batch API.

    Returns ``None`` for a valid ``sdk-log`` event (it is reported in neither list). Never raises.
    """
    try:
        return _validate_event(raw, access_level, epoch_ms_times)
    except Invalid as exc:
        return _invalid(raw, exc.detail)
    except Exception as exc:  # defence in depth: one odd element must not fail the whole batch
        return _invalid(raw, f"invalid event ({type(exc).__name__})")


def _validate_event(raw: object, access_level: str, epoch_ms_times: bool) -> ValidEvent | EventError | None:
    if not isinstance(raw, dict):
        raise Invalid("event: expected object")
    event_id = v_id(raw.get("id"), "id") if raw.get("id") is not None else None
    if event_id is None:
        raise Invalid("id: required")
    event_type = raw.get("type")
    if not isinstance(event_type, str):
        raise Invalid("type: required, must be a string")
    if raw.get("timestamp") is None:
        raise Invalid("timestamp: required")
    timestamp = (v_epoch_ms if epoch_ms_times else v_time)(raw["timestamp"], "timestamp")
    body = raw.get("body")
    if not isinstance(body, dict):
        raise Invalid("body: required, must be an object")

    spec = (_EVENT_SPECS_EPOCH_MS if epoch_ms_times else _EVENT_SPECS).get(event_type)
    if spec is None:
        if event_type == "sdk-log":
            return None
        internal = _INTERNAL_ONLY_TYPES.get(event_type)
        if internal is not None:
            raise Invalid(internal)
        raise Invalid(f"type: unknown event type {event_type[:100]!r}")
    kind, observation_type, fields, has_environment, check = spec

    clean = _validate_body(body, fields)
    if check is not None:
        check(clean)
    # Legacy observation bodies have no environment key at all, so whatever was sent is ignored.
    clean["environment"] = normalise_environment(body.get("environment")) if has_environment else "default"
    if observation_type is None and kind == "observation":
        observation_type = clean["type"]

    # Schema first, then scope: an invalid event is a 400 even for a key that could not have sent it.
    if access_level != "project" and event_type not in _SCORES_ONLY_TYPES:
        return EventError(event_id, 401, "Authentication error", "Access Scope Denied")
    return _make_valid_event(event_id, event_type, timestamp, kind, clean.get("id"), clean, observation_type)
