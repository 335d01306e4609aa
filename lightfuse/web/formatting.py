"""Jinja filters: times, durations, money, tokens, and how to show an input/output value for reading."""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson

# A value longer than this is folded behind a "show all" control.
FOLD_CHARS = 1200
FOLD_LINES = 16
PREVIEW_CHARS = 280


def _as_datetime(value: Any) -> dt.datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)):
        try:
            return dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(milliseconds=value)
        except OverflowError:
            return None
    if isinstance(value, str):
        try:
            return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    return None


def ts(value: Any, seconds: bool = True) -> str:
    """UTC wall time; every page shows UTC so that times match the API and the logs."""
    t = _as_datetime(value)
    if t is None:
        return "–"
    # field by field: strftime("%Y") writes year 87 as "87" on glibc
    day = f"{t.year:04d}-{t.month:02d}-{t.day:02d} {t.hour:02d}:{t.minute:02d}"
    return f"{day}:{t.second:02d}" if seconds else day


def ts_ms(value: Any) -> str:
    t = _as_datetime(value)
    return "–" if t is None else t.strftime("%H:%M:%S.") + f"{t.microsecond // 1000:03d}"


def duration(seconds: Any) -> str:
    if seconds is None or not isinstance(seconds, (int, float)) or seconds < 0:
        return "–"
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.2f}s"
    minutes, rest = divmod(seconds, 60)
    if minutes < 60:
        return f"{int(minutes)}m {rest:.0f}s"
    hours, minutes = divmod(minutes, 60)
    return f"{int(hours)}h {int(minutes)}m"


def money(value: Any) -> str:
    if value is None or not isinstance(value, (int, float)):
        return "–"
    if value == 0:
        return "$0"
    if abs(value) < 0.01:
        return f"${value:.6f}".rstrip("0")
    return f"${value:,.4f}".rstrip("0").rstrip(".")


def number(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.4f}".rstrip("0").rstrip(".")
    try:
        return f"{int(value):,}"
    except (TypeError, ValueError):
        return str(value)


def pretty_json(value: Any) -> str:
    try:
        return orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:
        return str(value)


def compact_json(value: Any) -> str:
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:
        return str(value)


def is_long(text: Any) -> bool:
    return isinstance(text, str) and (len(text) > FOLD_CHARS or text.count("\n") > FOLD_LINES)


def preview(text: Any, limit: int = PREVIEW_CHARS) -> str:
    text = text if isinstance(text, str) else compact_json(text)
    return text if len(text) <= limit else text[:limit].rstrip() + "…"


# --- chat messages ------------------------------------------------------------------------------------------


def _is_message(item: Any) -> bool:
    return (
        isinstance(item, dict)
        and isinstance(item.get("role"), str)
        and ("content" in item or "tool_calls" in item or "function_call" in item)
    )


def chat_messages(value: Any) -> list[dict[str, Any]] | None:
    """The messages of a chat-shaped value (a message list, ``{"messages": [...]}`` or one message), else None."""
    if isinstance(value, dict) and isinstance(value.get("messages"), list):
        value = value["messages"]
    if _is_message(value):
        value = [value]
    if not isinstance(value, list) or not value or not all(_is_message(m) for m in value):
        return None
    out = []
    for m in value:
        content = m.get("content")
        parts: list[dict[str, Any]] = []
        if isinstance(content, str):
            parts.append({"kind": "text", "text": content})
        elif isinstance(content, list):
            for part in content:
                if (
                    isinstance(part, dict)
                    and part.get("type") == "text"
                    and isinstance(part.get("text"), str)
                ):
                    parts.append({"kind": "text", "text": part["text"]})
                elif isinstance(part, str):
                    parts.append({"kind": "text", "text": part})
                else:
                    parts.append({"kind": "json", "value": part})
        elif content is not None:
            parts.append({"kind": "json", "value": content})
        calls = m.get("tool_calls") or ([m["function_call"]] if m.get("function_call") else [])
        extra = {
            k: v for k, v in m.items() if k not in ("role", "content", "tool_calls", "function_call", "name")
        }
        out.append(
            {"role": m["role"], "name": m.get("name"), "parts": parts, "tool_calls": calls, "extra": extra}
        )
    return out


def io_kind(value: Any) -> str:
    if value is None or value == "" or value == {} or value == []:
        return "empty"
    if chat_messages(value) is not None:
        return "chat"
    if isinstance(value, (dict, list)):
        return "json"
    return "text"


FILTERS = {
    "ts": ts,
    "ts_ms": ts_ms,
    "duration": duration,
    "money": money,
    "number": number,
    "pretty_json": pretty_json,
    "compact_json": compact_json,
    "is_long": is_long,
    "preview": preview,
    "chat_messages": chat_messages,
    "io_kind": io_kind,
}
