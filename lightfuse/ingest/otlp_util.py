"""Small helpers shared by the OTLP span mapping modules (time formatting, JSON, normalisation)."""

from __future__ import annotations

import json
import math
import re
import time
from datetime import UTC, datetime
from typing import Any

import orjson

# Upper bound for ISO formatting: year 9999. Anything outside is a broken clock, not a real span.
_MAX_MS = 253_402_300_799_999

# Spans of one export cluster within a few seconds, so the "YYYY-MM-DDTHH:MM:SS" prefix repeats.
_SEC_PREFIX: dict[int, str] = {}

NOT_JSON = object()  # sentinel: parse_json could not parse the text


# ".000Z" ... ".999Z": concatenation is several times cheaper than a format spec per call.
_MS_SUFFIX = tuple(f".{i:03d}Z" for i in range(1000))


def iso_from_ms(ms: int) -> str:
    """Epoch milliseconds -> ``2024-01-01T00:00:00.000Z`` (the format Langfuse emits)."""
    sec, milli = divmod(ms, 1000)
    prefix = _SEC_PREFIX.get(sec)
    if prefix is None:
        t = time.gmtime(sec)
        prefix = (
            f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"
        )
        if len(_SEC_PREFIX) > 4096:
            _SEC_PREFIX.clear()
        _SEC_PREFIX[sec] = prefix
    return prefix + _MS_SUFFIX[milli]


def valid_ms(ms: int | None) -> bool:
    return ms is not None and 0 <= ms <= _MAX_MS


def parse_iso_ms(value: Any) -> int | None:
    """An ISO-8601 timestamp (naive means UTC) -> epoch ms, or None if it is not one."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip()
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        # Python < 3.12 rejects more than 6 fractional digits; trim nanoseconds.
        m = re.match(r"^(.*T\d\d:\d\d:\d\d\.\d{1,6})\d*(Z|[+-]\d\d:?\d\d)?$", text)
        if not m:
            return None
        try:
            dt = datetime.fromisoformat(m.group(1) + (m.group(2) or ""))
        except ValueError:
            return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    ms = math.floor(dt.timestamp() * 1000 + 1e-6)
    return ms if valid_ms(ms) else None


def parse_json(text: Any) -> Any:
    """JSON-decode a string attribute; NOT_JSON when it is not a string or not JSON."""
    if not isinstance(text, str):
        return NOT_JSON
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return NOT_JSON


def maybe_json(value: Any) -> Any:
    """Parse a string that holds a JSON object/array; any other value is returned unchanged."""
    if isinstance(value, str) and value[:1] in ("{", "["):
        parsed = parse_json(value)
        if parsed is not NOT_JSON:
            return parsed
    return value


def json_object(value: Any) -> dict | None:
    """A JSON-object attribute (string-encoded) as a dict, else None."""
    parsed = parse_json(value) if isinstance(value, str) else value
    return parsed if isinstance(parsed, dict) else None


def dumps_str(value: Any) -> str:
    """JSON text of a value (orjson is strict about >64-bit ints, so fall back to json)."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value, default=str)


def as_text(value: Any) -> str:
    """Strings as-is, everything else as JSON - how ids/names given as non-strings are stored."""
    return value if isinstance(value, str) else dumps_str(value)


def to_number(value: Any) -> int | float | None:
    """A numeric attribute value (numbers or numeric strings) as int/float, else None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return int(value) if value.is_integer() else value
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        try:
            return int(text)
        except ValueError:
            pass
        try:
            f = float(text)
        except ValueError:
            return None
        if not math.isfinite(f):
            return None
        return int(f) if f.is_integer() else f
    return None


_ENV_OK = re.compile(r"^[a-z0-9_-]+$")


def normalize_environment(value: Any) -> str:
    """api-semantics 2.1: lower-case, strip leading langfuse[-_] prefixes, <= 40 chars, else default."""
    if not isinstance(value, str):
        return "default"
    env = value.lower()
    while env.startswith("langfuse"):
        env = env[8:]
        if env[:1] in ("-", "_"):
            env = env[1:]
    env = env[:40]
    return env if env and _ENV_OK.match(env) else "default"
