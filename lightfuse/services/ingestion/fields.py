"""Field validators of batch-ingestion events, and the timestamp and environment rules they use.

Every validator takes ``(value, path)`` and returns the cleaned value or raises :class:`Invalid` with the detail
reported to the client; ``None`` never reaches one (every field is nullable, and the caller handles it).
``events`` assembles them into the body schemas. Pure functions only: no I/O, no clock.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeGuard

from lightfuse.services.common.rows import LEVELS, SCORE_DATA_TYPES, SCORE_SOURCES

# JS numbers lose integer precision above this; the store keeps 64-bit ints. Rejecting here keeps both sane.
_MAX_SAFE_INT = 2**53 - 1


class Invalid(Exception):
    """Internal: a validation failure carrying the detail string reported to the client."""

    __slots__ = ("detail",)

    def __init__(self, detail: str) -> None:
        self.detail = detail


# ---------------------------------------------------------------------------------------------------------
# Timestamps and environments
# ---------------------------------------------------------------------------------------------------------

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ONE_MS = timedelta(milliseconds=1)


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
    return (parsed - EPOCH) // ONE_MS  # exact integer floor, no float rounding


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

Validator = Callable[[Any, str], Any]


def v_any(v: Any, path: str) -> Any:
    return v


def v_str(v: Any, path: str) -> str:
    if isinstance(v, str):
        return v
    raise Invalid(f"{path}: expected string")


def v_id(v: Any, path: str) -> str:
    if not isinstance(v, str):
        raise Invalid(f"{path}: expected string")
    if not 0 < len(v) <= 800:
        raise Invalid(f"{path}: id must be 1 to 800 characters")
    if "\r" in v:
        raise Invalid(f"{path}: id must not contain carriage returns")
    return v


def v_trace_name(v: Any, path: str) -> str:
    if not isinstance(v, str):
        raise Invalid(f"{path}: expected string")
    if len(v) > 1000:
        raise Invalid(f"{path}: must be at most 1000 characters")
    return v


def v_time(v: Any, path: str) -> int:
    try:
        return parse_iso_timestamp(v)
    except ValueError as exc:
        raise Invalid(f"{path}: {exc}") from None


# What parse_iso_timestamp can return: years 0001 to 9999.
_MIN_EPOCH_MS = (datetime(1, 1, 1, tzinfo=UTC) - EPOCH) // ONE_MS
_MAX_EPOCH_MS = (datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC) - EPOCH) // ONE_MS


def v_epoch_ms(v: Any, path: str) -> int:
    # times of events built by an internal mapper (OTLP): already epoch ms, same range as the ISO form
    if type(v) is int and _MIN_EPOCH_MS <= v <= _MAX_EPOCH_MS:
        return v
    raise Invalid(f"{path}: expected epoch milliseconds")


def _is_number(v: Any) -> TypeGuard[int | float]:
    # bool is an int subclass in Python but a distinct JSON type; NaN/inf never come from JSON.
    if type(v) is int:
        return True
    return type(v) is float and math.isfinite(v)


def v_number(v: Any, path: str) -> float:
    if _is_number(v):
        try:
            return float(v)
        except OverflowError:  # an int too large for a double
            pass
    raise Invalid(f"{path}: expected number")


def v_int(v: Any, path: str) -> int:
    if type(v) is float and v.is_integer():  # JSON "3.0" is an integer for JS-based clients
        v = int(v)
    if type(v) is not int:
        raise Invalid(f"{path}: expected integer")
    if not -_MAX_SAFE_INT <= v <= _MAX_SAFE_INT:
        raise Invalid(f"{path}: integer out of range")
    return v


def v_bool(v: Any, path: str) -> bool:
    if type(v) is bool:
        return v
    raise Invalid(f"{path}: expected boolean")


def v_level(v: Any, path: str) -> str:
    if isinstance(v, str) and v in LEVELS:
        return v
    raise Invalid(f"{path}: must be one of {', '.join(LEVELS)}")


def v_tags(v: Any, path: str) -> list[str]:
    if v.__class__ is list:
        for tag in v:
            if tag.__class__ is not str:
                break
        else:
            return list(v)
    raise Invalid(f"{path}: expected array of strings")


def v_object(v: Any, path: str) -> dict[str, Any]:
    if isinstance(v, dict):
        return v
    raise Invalid(f"{path}: expected object")


def _is_scalar(v: Any) -> bool:
    t = v.__class__
    if t is str or t is int or t is bool or v is None:
        return True
    return t is float and math.isfinite(v)


def v_model_params(v: Any, path: str) -> dict[str, Any]:
    # Values: string | number | boolean | string[] | map<string,string> | null.
    if not isinstance(v, dict):
        raise Invalid(f"{path}: expected object")
    for key, item in v.items():
        t = item.__class__
        if t is str or t is int or t is bool or item is None or (t is float and math.isfinite(item)):
            continue
        if isinstance(item, list) and all(isinstance(x, str) for x in item):
            continue
        if isinstance(item, dict) and all(isinstance(x, str) for x in item.values()):
            continue
        raise Invalid(f"{path}.{key}: unsupported model parameter value")
    return v


def v_legacy_model_params(v: Any, path: str) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise Invalid(f"{path}: expected object")
    for key, item in v.items():
        if not _is_scalar(item):
            raise Invalid(f"{path}.{key}: expected string, number, boolean or null")
    return v


_USAGE_UNITS = ("CHARACTERS", "TOKENS", "MILLISECONDS", "SECONDS", "IMAGES", "REQUESTS")
_USAGE_INT_KEYS = ("input", "output", "total", "promptTokens", "completionTokens", "totalTokens")
_USAGE_COST_KEYS = ("inputCost", "outputCost", "totalCost")


def v_usage(v: Any, path: str) -> dict[str, Any]:
    """Legacy ``usage`` (Langfuse or OpenAI camelCase shape); unknown keys are dropped like any unknown key."""
    if not isinstance(v, dict):
        raise Invalid(f"{path}: expected object")
    out: dict[str, Any] = {}
    for key in _USAGE_INT_KEYS:
        item = v.get(key)
        if item is not None:
            out[key] = v_int(item, f"{path}.{key}")
    for key in _USAGE_COST_KEYS:
        item = v.get(key)
        if item is not None:
            out[key] = v_number(item, f"{path}.{key}")
    unit = v.get("unit")
    if unit is not None:
        if not (isinstance(unit, str) and unit in _USAGE_UNITS):
            raise Invalid(f"{path}.unit: must be one of {', '.join(_USAGE_UNITS)}")
        out["unit"] = unit
    return out


def v_cost_details(v: Any, path: str) -> dict[str, Any]:
    # Numbers (or null) only; negative entries are not an error, normalise_cost just ignores them.
    if not isinstance(v, dict):
        raise Invalid(f"{path}: expected object")
    for key, item in v.items():
        if item is not None and not _is_number(item):
            raise Invalid(f"{path}.{key}: expected number")
    return v


def v_score_value(v: Any, path: str) -> float | str:
    if isinstance(v, str):
        return v
    if _is_number(v):
        return v_number(v, path)
    raise Invalid(f"{path}: expected number or string")


def _enum(values: tuple[str, ...]) -> Validator:
    allowed = frozenset(values)
    detail = "must be one of " + ", ".join(values)

    def check(v: Any, path: str) -> str:
        if isinstance(v, str) and v in allowed:
            return v
        raise Invalid(f"{path}: {detail}")

    return check


_LEGACY_OBSERVATION_TYPES = ("GENERATION", "SPAN", "EVENT")
v_legacy_type = _enum(_LEGACY_OBSERVATION_TYPES)
v_data_type = _enum(SCORE_DATA_TYPES)
v_source = _enum(SCORE_SOURCES)


# the validators by the names the body schemas use ("key:name" words, see events._fields)
VALIDATORS: dict[str, Validator] = {
    "any": v_any,
    "str": v_str,
    "id": v_id,
    "trace_name": v_trace_name,
    "time": v_time,
    "int": v_int,
    "bool": v_bool,
    "level": v_level,
    "tags": v_tags,
    "object": v_object,
    "model_params": v_model_params,
    "legacy_model_params": v_legacy_model_params,
    "usage": v_usage,
    "cost_details": v_cost_details,
    "score_value": v_score_value,
    "legacy_type": v_legacy_type,
    "data_type": v_data_type,
    "source": v_source,
}
