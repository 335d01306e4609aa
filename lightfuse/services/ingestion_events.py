"""Validation of batch-ingestion events (``POST /api/public/ingestion``) and usage/cost normalisation.

Pure functions only: no I/O, no clock, no randomness. ``validate_event`` turns one untrusted batch element into
a :class:`ValidEvent`, an :class:`EventError` (a per-event 207 entry) or ``None`` (``sdk-log``: reported nowhere).

Validation is hand-written rather than pydantic because it runs once per event on the request path and the
schemas are small: a ``key -> (path, validator)`` table per body type, applied to the keys actually sent. Every
validator returns the cleaned value or raises :class:`_Invalid`; ``validate_event`` additionally catches *any*
exception so that hostile input can never turn into a 500 for the whole batch.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from lightfuse.services.rows import LEVELS, OBSERVATION_TYPES, SCORE_DATA_TYPES, SCORE_SOURCES, EntityKind

__all__ = [
    "EventError",
    "ValidEvent",
    "normalise_environment",
    "parse_iso_timestamp",
    "validate_event",
]

# JS numbers lose integer precision above this; the store keeps 64-bit ints. Rejecting here keeps both sane.
_MAX_SAFE_INT = 2**53 - 1


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
    # Validated events cross a process boundary (services/otlp_offload.py). A slots dataclass pickles through
    # the generic __getstate__/__setstate__, which call dataclasses.fields() per event; rebuilding from the
    # field tuple through _make_valid_event is several times cheaper on both sides.
    return _make_valid_event, (event.id, event.type, event.timestamp, event.kind, event.entity_id, event.body,
                               event.observation_type)


ValidEvent.__reduce__ = _reduce_valid_event  # type: ignore[method-assign]


class _Invalid(Exception):
    """Internal: a validation failure carrying the detail string reported to the client."""

    __slots__ = ("detail",)

    def __init__(self, detail: str) -> None:
        self.detail = detail


# ---------------------------------------------------------------------------------------------------------
# Timestamps and environments
# ---------------------------------------------------------------------------------------------------------

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)


def parse_iso_timestamp(value: object) -> int:
    """ISO-8601 date-time with a timezone designator -> UTC epoch milliseconds (sub-ms digits are floored).

    Raises ValueError for non-strings, malformed strings and naive (timezone-less) timestamps.
    """
    if not isinstance(value, str):
        raise ValueError("timestamp must be an ISO-8601 string")
    # datetime.fromisoformat (C, ~5x faster than a regex parse) also takes basic/week-date forms and any
    # date-time separator; this cheap shape check keeps us to the extended calendar form "YYYY-MM-DDTHH:MM...".
    # (index 7 rules out week dates "YYYY-Www-D", 10 basic forms and odd separators, 13 hour-only times)
    if len(value) < 16 or value[7] != "-" or value[10] not in "Tt " or value[13] != ":":
        raise ValueError("invalid ISO-8601 timestamp")
    if value[-1] == "z":  # RFC 3339 allows a lower-case designator; fromisoformat does not
        value = value[:-1] + "Z"
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError("invalid ISO-8601 timestamp") from None
    if parsed.tzinfo is None:
        raise ValueError("timestamp must include a timezone")
    return (parsed - _EPOCH) // _ONE_MS  # exact integer floor, no float rounding


_ENV_PREFIX_RE = re.compile(r"(?:langfuse[-_]?)+")
_ENV_VALID_RE = re.compile(r"[a-z0-9_-]+", re.ASCII)


# Few distinct environments exist per deployment, so memoise; bounded so hostile input cannot grow it forever.
_ENV_CACHE: dict[str, str] = {}
_ENV_CACHE_MAX = 4096


def normalise_environment(value: object) -> str:
    """Public-ingestion environment rule; never fails, anything unusable becomes ``"default"``."""
    if not isinstance(value, str):
        return "default"
    cached = _ENV_CACHE.get(value)
    if cached is not None:
        return cached
    env = _normalise_environment(value)
    if len(value) <= 64 and len(_ENV_CACHE) < _ENV_CACHE_MAX:
        _ENV_CACHE[value] = env
    return env


def _normalise_environment(value: str) -> str:
    env = value.lower()
    m = _ENV_PREFIX_RE.match(env)
    if m is not None:
        env = env[m.end() :]
    env = env[:40]
    if not env or _ENV_VALID_RE.fullmatch(env) is None:
        return "default"
    return env


# ---------------------------------------------------------------------------------------------------------
# Field validators: (value, path) -> cleaned value; None is handled by the caller (every field is nullable)
# ---------------------------------------------------------------------------------------------------------

_Validator = Callable[[Any, str], Any]


def _v_any(v: Any, path: str) -> Any:
    return v


def _v_str(v: Any, path: str) -> str:
    if isinstance(v, str):
        return v
    raise _Invalid(f"{path}: expected string")


def _v_id(v: Any, path: str) -> str:
    if not isinstance(v, str):
        raise _Invalid(f"{path}: expected string")
    if not 0 < len(v) <= 800:
        raise _Invalid(f"{path}: id must be 1 to 800 characters")
    if "\r" in v:
        raise _Invalid(f"{path}: id must not contain carriage returns")
    return v


def _v_trace_name(v: Any, path: str) -> str:
    if not isinstance(v, str):
        raise _Invalid(f"{path}: expected string")
    if len(v) > 1000:
        raise _Invalid(f"{path}: must be at most 1000 characters")
    return v


def _v_time(v: Any, path: str) -> int:
    try:
        return parse_iso_timestamp(v)
    except ValueError as exc:
        raise _Invalid(f"{path}: {exc}") from None


# What parse_iso_timestamp can return: years 0001 to 9999.
_MIN_EPOCH_MS = (datetime(1, 1, 1, tzinfo=UTC) - _EPOCH) // _ONE_MS
_MAX_EPOCH_MS = (datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC) - _EPOCH) // _ONE_MS


def _v_epoch_ms(v: Any, path: str) -> int:
    # times of events built by an internal mapper (OTLP): already epoch ms, same range as the ISO form
    if type(v) is int and _MIN_EPOCH_MS <= v <= _MAX_EPOCH_MS:
        return v
    raise _Invalid(f"{path}: expected epoch milliseconds")


def _is_number(v: Any) -> bool:
    # bool is an int subclass in Python but a distinct JSON type; NaN/inf never come from JSON.
    if type(v) is int:
        return True
    return type(v) is float and math.isfinite(v)


def _v_number(v: Any, path: str) -> float:
    if _is_number(v):
        try:
            return float(v)
        except OverflowError:  # an int too large for a double
            pass
    raise _Invalid(f"{path}: expected number")


def _v_int(v: Any, path: str) -> int:
    if type(v) is float and v.is_integer():  # JSON "3.0" is an integer for JS-based clients
        v = int(v)
    if type(v) is not int:
        raise _Invalid(f"{path}: expected integer")
    if not -_MAX_SAFE_INT <= v <= _MAX_SAFE_INT:
        raise _Invalid(f"{path}: integer out of range")
    return v


def _v_bool(v: Any, path: str) -> bool:
    if type(v) is bool:
        return v
    raise _Invalid(f"{path}: expected boolean")


def _v_level(v: Any, path: str) -> str:
    if isinstance(v, str) and v in LEVELS:
        return v
    raise _Invalid(f"{path}: must be one of {', '.join(LEVELS)}")


def _v_tags(v: Any, path: str) -> list[str]:
    if v.__class__ is list:
        for tag in v:
            if tag.__class__ is not str:
                break
        else:
            return list(v)
    raise _Invalid(f"{path}: expected array of strings")


def _v_object(v: Any, path: str) -> dict[str, Any]:
    if isinstance(v, dict):
        return v
    raise _Invalid(f"{path}: expected object")


def _is_scalar(v: Any) -> bool:
    t = v.__class__
    if t is str or t is int or t is bool or v is None:
        return True
    return t is float and math.isfinite(v)


def _v_model_params(v: Any, path: str) -> dict[str, Any]:
    # Values: string | number | boolean | string[] | map<string,string> | null.
    if not isinstance(v, dict):
        raise _Invalid(f"{path}: expected object")
    for key, item in v.items():
        t = item.__class__
        if t is str or t is int or t is bool or item is None or (t is float and math.isfinite(item)):
            continue
        if isinstance(item, list) and all(isinstance(x, str) for x in item):
            continue
        if isinstance(item, dict) and all(isinstance(x, str) for x in item.values()):
            continue
        raise _Invalid(f"{path}.{key}: unsupported model parameter value")
    return v


def _v_legacy_model_params(v: Any, path: str) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise _Invalid(f"{path}: expected object")
    for key, item in v.items():
        if not _is_scalar(item):
            raise _Invalid(f"{path}.{key}: expected string, number, boolean or null")
    return v


_USAGE_UNITS = ("CHARACTERS", "TOKENS", "MILLISECONDS", "SECONDS", "IMAGES", "REQUESTS")
_USAGE_INT_KEYS = ("input", "output", "total", "promptTokens", "completionTokens", "totalTokens")
_USAGE_COST_KEYS = ("inputCost", "outputCost", "totalCost")


def _v_usage(v: Any, path: str) -> dict[str, Any]:
    """Legacy ``usage`` (Langfuse or OpenAI camelCase shape); unknown keys are dropped like any unknown key."""
    if not isinstance(v, dict):
        raise _Invalid(f"{path}: expected object")
    out: dict[str, Any] = {}
    for key in _USAGE_INT_KEYS:
        item = v.get(key)
        if item is not None:
            out[key] = _v_int(item, f"{path}.{key}")
    for key in _USAGE_COST_KEYS:
        item = v.get(key)
        if item is not None:
            out[key] = _v_number(item, f"{path}.{key}")
    unit = v.get("unit")
    if unit is not None:
        if not (isinstance(unit, str) and unit in _USAGE_UNITS):
            raise _Invalid(f"{path}.unit: must be one of {', '.join(_USAGE_UNITS)}")
        out["unit"] = unit
    return out


def _v_cost_details(v: Any, path: str) -> dict[str, Any]:
    # Numbers (or null) only; negative entries are not an error, normalise_cost just ignores them.
    if not isinstance(v, dict):
        raise _Invalid(f"{path}: expected object")
    for key, item in v.items():
        if item is not None and not _is_number(item):
            raise _Invalid(f"{path}.{key}: expected number")
    return v


def _v_score_value(v: Any, path: str) -> float | str:
    if isinstance(v, str):
        return v
    if _is_number(v):
        return _v_number(v, path)
    raise _Invalid(f"{path}: expected number or string")


def _enum(values: tuple[str, ...]) -> _Validator:
    allowed = frozenset(values)
    detail = "must be one of " + ", ".join(values)

    def check(v: Any, path: str) -> str:
        if isinstance(v, str) and v in allowed:
            return v
        raise _Invalid(f"{path}: {detail}")

    return check


_LEGACY_OBSERVATION_TYPES = ("GENERATION", "SPAN", "EVENT")
_v_legacy_type = _enum(_LEGACY_OBSERVATION_TYPES)
_v_data_type = _enum(SCORE_DATA_TYPES)
_v_source = _enum(SCORE_SOURCES)


# ---------------------------------------------------------------------------------------------------------
# Body schemas
# ---------------------------------------------------------------------------------------------------------

_Fields = dict[str, tuple[str, _Validator]]
_VALIDATORS: dict[str, _Validator] = {
    "any": _v_any,
    "str": _v_str,
    "id": _v_id,
    "trace_name": _v_trace_name,
    "time": _v_time,
    "int": _v_int,
    "bool": _v_bool,
    "level": _v_level,
    "tags": _v_tags,
    "object": _v_object,
    "model_params": _v_model_params,
    "legacy_model_params": _v_legacy_model_params,
    "usage": _v_usage,
    "cost_details": _v_cost_details,
    "score_value": _v_score_value,
    "legacy_type": _v_legacy_type,
    "data_type": _v_data_type,
    "source": _v_source,
}


def _fields(*specs: str) -> _Fields:
    """Build a body table from "key:validator" words (kept as text so the schemas read like schemas)."""
    table: _Fields = {}
    for spec in specs:
        for word in spec.split():
            key, _, name = word.partition(":")
            table[key] = ("body." + key, _VALIDATORS[name])
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
        raise _Invalid("body.id: required")


def _check_generation(body: dict[str, Any]) -> None:
    _check_observation_id(body)
    if (body.get("promptName") is None) != (body.get("promptVersion") is None):
        raise _Invalid("body: promptName and promptVersion must be set together")


def _check_legacy(body: dict[str, Any]) -> None:
    if body.get("type") is None:
        raise _Invalid("body.type: required")


SCORE_SCOPE_MESSAGE = (
    "Provide exactly one of the following: traceId (with optional observationId), sessionId or datasetRunId. "
    "ObservationId requires traceId."
)


def _check_score(body: dict[str, Any]) -> None:
    name = body.get("name")
    if not name:
        raise _Invalid("body.name: required, must be a non-empty string")
    value = body.get("value")
    if value is None:
        raise _Invalid("body.value: required")
    scopes = bool(body.get("traceId")) + bool(body.get("sessionId")) + bool(body.get("datasetRunId"))
    if scopes != 1 or (body.get("observationId") and not body.get("traceId")):
        raise _Invalid(SCORE_SCOPE_MESSAGE)
    data_type = body.get("dataType")
    is_text = isinstance(value, str)
    if data_type == "NUMERIC" and is_text:
        raise _Invalid("body.value: NUMERIC scores require a numeric value")
    if data_type == "BOOLEAN" and (is_text or value not in (0.0, 1.0)):
        raise _Invalid("body.value: BOOLEAN scores require the number 0 or 1")
    if data_type in ("CATEGORICAL", "CORRECTION", "TEXT") and not is_text:
        raise _Invalid(f"body.value: {data_type} scores require a string value")
    if data_type == "CORRECTION" and body.get("configId"):
        raise _Invalid("body.configId: CORRECTION scores cannot reference a score config")
    if data_type == "TEXT" and not 1 <= len(value) <= 500:
        raise _Invalid("body.value: TEXT scores must be 1 to 500 characters")
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
    fields = {key: (path, _v_epoch_ms if fn is _v_time else fn) for key, (path, fn) in fields.items()}
    return kind, observation_type, fields, has_environment, check


# The same schemas for mapped events, whose times are epoch ms (see validate_event's epoch_ms_times).
_EVENT_SPECS_EPOCH_MS: dict[str, _Spec] = {t: _with_epoch_ms_times(spec) for t, spec in _EVENT_SPECS.items()}

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
        if value is None or fn is _v_any:
            out[key] = value
        elif fn is _v_str:
            if value.__class__ is not str:
                raise _Invalid(f"{spec[0]}: expected string")
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
    except _Invalid as exc:
        return _invalid(raw, exc.detail)
    except Exception as exc:  # defence in depth: one odd element must not fail the whole batch
        return _invalid(raw, f"invalid event ({type(exc).__name__})")


def _validate_event(raw: object, access_level: str, epoch_ms_times: bool) -> ValidEvent | EventError | None:
    if not isinstance(raw, dict):
        raise _Invalid("event: expected object")
    event_id = _v_id(raw.get("id"), "id") if raw.get("id") is not None else None
    if event_id is None:
        raise _Invalid("id: required")
    event_type = raw.get("type")
    if not isinstance(event_type, str):
        raise _Invalid("type: required, must be a string")
    if raw.get("timestamp") is None:
        raise _Invalid("timestamp: required")
    timestamp = (_v_epoch_ms if epoch_ms_times else _v_time)(raw["timestamp"], "timestamp")
    body = raw.get("body")
    if not isinstance(body, dict):
        raise _Invalid("body: required, must be an object")

    spec = (_EVENT_SPECS_EPOCH_MS if epoch_ms_times else _EVENT_SPECS).get(event_type)
    if spec is None:
        if event_type == "sdk-log":
            return None
        internal = _INTERNAL_ONLY_TYPES.get(event_type)
        if internal is not None:
            raise _Invalid(internal)
        raise _Invalid(f"type: unknown event type {event_type[:100]!r}")
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
