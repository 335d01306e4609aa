"""Usage and cost normalisation of ingestion bodies (api-semantics 2.1, "Per-event usage" in 2.4).

OpenAI chat-completion and Responses usage shapes become input/output/total with their *_details split out;
anything else is kept as a map of non-negative integers. Pure functions; they never raise.
"""

from __future__ import annotations

import math
import re
from typing import Any, TypeGuard


def _is_number(v: Any) -> TypeGuard[int | float]:
    # bool is an int subclass in Python but a distinct JSON type; NaN/inf never come from JSON.
    if type(v) is int:
        return True
    return type(v) is float and math.isfinite(v)


# ---------------------------------------------------------------------------------------------------------
# Usage and cost normalisation (per event; the merge decides what replaces what)
# ---------------------------------------------------------------------------------------------------------

_OPENAI_CAMEL_KEYS = ("promptTokens", "completionTokens", "totalTokens")
_INT64_MAX = 2**63 - 1
# JS parseInt without radix: optional whitespace and sign, then a hex (0x) or decimal prefix; junk after is ignored.
_PARSE_INT_RE = re.compile(r"[ \t\n\r\f\v]*([+-]?)(?:0[xX]([0-9a-fA-F]+)|([0-9]+))", re.ASCII)


def _as_int(v: Any) -> int | None:
    if type(v) is int:
        return v
    if type(v) is float and v.is_integer():
        return int(v)
    return None


def _non_negative_int(v: Any) -> int | None:
    n: int | None
    if isinstance(v, str):
        m = _PARSE_INT_RE.match(v)
        if m is None:
            return None
        n = int(m.group(2), 16) if m.group(2) is not None else int(m.group(3))
        if m.group(1) == "-" and n != 0:
            return None
    else:
        n = _as_int(v)
        if n is None:
            return None
    # Anything beyond int64 cannot be stored; it is as unusable as a negative count.
    return n if 0 <= n <= _INT64_MAX else None


_OPENAI_SHAPES = (
    ("prompt_tokens", "completion_tokens", "prompt_tokens_details", "completion_tokens_details"),
    ("input_tokens", "output_tokens", "input_tokens_details", "output_tokens_details"),
)


def _openai_usage(details: dict[str, Any]) -> dict[str, int] | None:
    """The strict OpenAI chat-completion or Responses usage shapes, or None when neither fits exactly."""
    for in_key, out_key, in_details_key, out_details_key in _OPENAI_SHAPES:
        if not details.keys() <= {in_key, out_key, "total_tokens", in_details_key, out_details_key}:
            continue
        inp = _as_int(details.get(in_key))
        out = _as_int(details.get(out_key))
        total = _as_int(details.get("total_tokens"))
        if inp is None or out is None or total is None or min(inp, out, total) < 0:
            continue
        result = {"input": inp, "output": out, "total": total}
        ok = True
        for prefix, details_key in (("input", in_details_key), ("output", out_details_key)):
            sub = details.get(details_key)
            if sub is None:
                continue
            if not isinstance(sub, dict):
                ok = False
                break
            for key, raw in sub.items():
                if raw is None:
                    continue
                n = _as_int(raw)
                if n is None or n < 0:
                    ok = False
                    break
                result[f"{prefix}_{key}"] = n
                # The detail counts are part of the headline count; keep the headline as the remainder.
                result[prefix] = max(0, result[prefix] - n)
            if not ok:
                break
        if ok:
            return result
    return None


def _normalise_usage_details(details: Any) -> dict[str, int]:
    if not isinstance(details, dict) or not details:
        return {}
    openai = _openai_usage(details)
    if openai is not None:
        return openai
    out: dict[str, int] = {}
    for key, raw in details.items():
        n = _non_negative_int(raw)
        if n is not None and isinstance(key, str):
            out[key] = n
    return out


def _is_openai_camel(usage: dict[str, Any]) -> bool:
    return any(usage.get(k) is not None for k in _OPENAI_CAMEL_KEYS)


def normalise_usage(usage: Any, usage_details: Any) -> dict[str, int]:
    """One event's provided usage map: legacy ``usage`` overlaid with normalised ``usageDetails``; {} if none."""
    if usage is None and usage_details is None:  # most events (every OTLP span but generations) carry none
        return {}
    details = _normalise_usage_details(usage_details)
    out: dict[str, int] = {}
    if isinstance(usage, dict) and usage:
        if _is_openai_camel(usage):
            inp, outp, total = (_as_int(usage.get(k)) for k in _OPENAI_CAMEL_KEYS)
        else:
            inp, outp, total = (_as_int(usage.get(k)) for k in ("input", "output", "total"))
        if not total:  # JS `total || ...`: a zero total is recomputed too
            if details:
                total = None
            elif inp and outp:
                total = inp + outp
            else:
                total = inp if inp is not None else outp
        for key, n in (("input", inp), ("output", outp), ("total", total)):
            if n is not None:
                out[key] = n
    out.update(details)
    return out


def normalise_cost(usage: Any, cost_details: Any) -> dict[str, float]:
    """One event's provided cost map (USD): legacy usage costs overlaid with valid ``costDetails``; {} if none."""
    out: dict[str, float] = {}
    # OpenAI-style legacy usage carries no cost, any cost keys sent next to it are discarded.
    if isinstance(usage, dict) and usage and not _is_openai_camel(usage):
        for key, source in (("input", "inputCost"), ("output", "outputCost"), ("total", "totalCost")):
            v = usage.get(source)
            if _is_number(v):
                try:
                    out[key] = float(v)
                except OverflowError:
                    pass
    if isinstance(cost_details, dict):
        for key, v in cost_details.items():
            if isinstance(key, str) and _is_number(v) and v >= 0:
                try:
                    out[key] = float(v)
                except OverflowError:
                    pass
    return out
