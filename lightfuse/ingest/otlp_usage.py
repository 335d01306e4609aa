"""Usage and cost details for OTLP spans (api-semantics 4.5).

Providers report token counts as overlapping totals: "input tokens" includes cached and
cache-write tokens, "output tokens" includes reasoning and audio tokens. Langfuse prices every
usage key separately, so the overlapping parts are split out under their own keys and subtracted
from input/output - otherwise a cached token would be billed at the full and the cached rate.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lightfuse.ingest.otlp_util import json_object, parse_json, to_number

# Suffix (after `gen_ai.usage.` / `llm.token_count.` and an optional `details.`) -> usage key.
_GENERIC_KEYS = {
    "prompt_tokens": "input",
    "input_tokens": "input",
    "prompt": "input",
    "input": "input",
    "completion_tokens": "output",
    "output_tokens": "output",
    "completion": "output",
    "output": "output",
    "total_tokens": "total",
    "total": "total",
    # cache reads
    "cache_read.input_tokens": "input_cached_tokens",
    "cache_read_input_tokens": "input_cached_tokens",
    "cache_read_tokens": "input_cached_tokens",
    "cached_tokens": "input_cached_tokens",
    "cached_input_tokens": "input_cached_tokens",
    "input_cached_tokens": "input_cached_tokens",
    "prompt_details.cache_read": "input_cached_tokens",
    "prompt_tokens_details.cached_tokens": "input_cached_tokens",
    "input_tokens_details.cached_tokens": "input_cached_tokens",
    # cache writes
    "cache_creation.input_tokens": "input_cache_creation",
    "cache_creation_input_tokens": "input_cache_creation",
    "cache_creation_tokens": "input_cache_creation",
    "cache_write_tokens": "input_cache_creation",
    "cache_write.input_tokens": "input_cache_creation",
    "input_cache_creation": "input_cache_creation",
    "prompt_details.cache_write": "input_cache_creation",
    # reasoning
    "reasoning_tokens": "output_reasoning_tokens",
    "reasoning.output_tokens": "output_reasoning_tokens",
    "reasoning_output_tokens": "output_reasoning_tokens",
    "thoughts_tokens": "output_reasoning_tokens",
    "output_reasoning_tokens": "output_reasoning_tokens",
    "completion_details.reasoning": "output_reasoning_tokens",
    "completion_tokens_details.reasoning_tokens": "output_reasoning_tokens",
    "output_tokens_details.reasoning_tokens": "output_reasoning_tokens",
    # audio produced by the model
    "completion_details.audio": "output_audio_tokens",
    "audio_output_tokens": "output_audio_tokens",
    "output_audio_tokens": "output_audio_tokens",
    "completion_tokens_details.audio_tokens": "output_audio_tokens",
}
_INPUT_PARTS = (
    "input_cached_tokens",
    "input_cache_creation",
    "input_cache_read",
    "input_cache_creation_5m",
    "input_cache_creation_1h",
)
_OUTPUT_PARTS = ("output_reasoning_tokens", "output_audio_tokens")
_PART_KEYS = frozenset(_INPUT_PARTS + _OUTPUT_PARTS)


def extract_usage_details(
    attrs: dict[str, Any], scope_name: str, counters: Sequence[tuple[str, Any]]
) -> dict[str, int] | None:
    """usageDetails for an observation body, or None when the span reports no usage.

    ``counters``: (suffix, value) of the span's `gen_ai.usage.*` / `llm.token_count.*` keys.
    """
    raw = attrs.get("langfuse.observation.usage_details")
    if raw is not None:
        explicit = json_object(raw)
        if explicit is not None:
            # Sent by the Langfuse SDKs in ingestion-API shape; the pipeline normalises it (2.1).
            return explicit or None
    if scope_name == "genkit-tracer":
        usage = _genkit_usage(attrs, counters)
    elif scope_name == "ai":
        usage = _ai_sdk_usage(attrs)
    elif counters:
        usage = _generic_usage(attrs, counters)
    else:
        return None
    return _keep_counts(usage)


def _keep_counts(usage: dict[str, Any] | None) -> dict[str, int] | None:
    """2.1 rule 3: only non-negative integer counts survive; nothing left means no usage."""
    if not usage:
        return None
    out: dict[str, int] = {}
    for key, value in usage.items():
        n = value if type(value) is int else to_number(value)
        if isinstance(n, int) and n >= 0:
            out[key] = n
    return out or None


def _generic_usage(attrs: dict[str, Any], counters: Sequence[tuple[str, Any]]) -> dict[str, Any]:
    usage: dict[str, Any] = {}
    for suffix, value in counters:
        if suffix == "cost":  # gen_ai.usage.cost is a cost, not a count
            continue
        n = value if type(value) is int else to_number(value)
        if n is None:
            continue
        if suffix.startswith("details."):
            suffix = suffix[8:]
        usage[_GENERIC_KEYS.get(suffix, suffix)] = n
    if not usage:
        return usage
    provider_metadata = attrs.get("ai.response.providerMetadata")
    if provider_metadata is not None:
        _apply_provider_metadata(usage, provider_metadata)
    _subtract_parts(usage)
    return usage


def _ai_sdk_usage(attrs: dict[str, Any]) -> dict[str, Any]:
    def num(*keys: str) -> Any:
        for key in keys:
            if key in attrs:
                return to_number(_unwrap_int(attrs[key]))
        return None

    usage: dict[str, Any] = {
        "input": num("gen_ai.usage.prompt_tokens", "gen_ai.usage.input_tokens"),
        "output": num("gen_ai.usage.completion_tokens", "gen_ai.usage.output_tokens"),
        "total": num("ai.usage.tokens", "gen_ai.usage.total_tokens"),
        "input_cached_tokens": num(
            "ai.usage.cachedInputTokens",
            "ai.usage.inputTokenDetails.cacheReadTokens",
            "gen_ai.usage.cache_read.input_tokens",
        ),
        "input_cache_creation": num(
            "ai.usage.inputTokenDetails.cacheWriteTokens", "gen_ai.usage.cache_creation.input_tokens"
        ),
        "output_reasoning_tokens": num(
            "ai.usage.reasoningTokens", "ai.usage.outputTokenDetails.reasoningTokens"
        ),
    }
    usage = {k: v for k, v in usage.items() if v is not None}
    _apply_provider_metadata(usage, attrs.get("ai.response.providerMetadata"))
    _subtract_parts(usage)
    return usage


def _unwrap_int(value: Any) -> Any:
    # Some AI SDK versions record these counts as a JSON-encoded AnyValue: '{"intValue": 12}'.
    if isinstance(value, str) and value.startswith("{"):
        obj = json_object(value)
        if obj is not None:
            return obj.get("intValue")
    return value


def _apply_provider_metadata(usage: dict[str, Any], raw: Any) -> None:
    """Fill cache/reasoning keys the span attributes did not report from provider metadata."""
    meta = json_object(raw)
    if meta is None:
        return
    openai = meta.get("openai")
    if isinstance(openai, dict):
        for src, dst in (
            ("cachedPromptTokens", "input_cached_tokens"),
            ("acceptedPredictionTokens", "accepted_prediction_tokens"),
            ("rejectedPredictionTokens", "rejected_prediction_tokens"),
            ("reasoningTokens", "output_reasoning_tokens"),
        ):
            _fill(usage, dst, openai.get(src))
    anthropic = meta.get("anthropic")
    if isinstance(anthropic, dict) and isinstance(anthropic.get("usage"), dict):
        au = anthropic["usage"]
        _fill(usage, "input_cache_creation", au.get("cache_creation_input_tokens"))
        _fill(usage, "input_cached_tokens", au.get("cache_read_input_tokens"))
        split = au.get("cache_creation")
        if isinstance(split, dict):
            five = to_number(split.get("ephemeral_5m_input_tokens")) or 0
            hour = to_number(split.get("ephemeral_1h_input_tokens")) or 0
            total = to_number(usage.get("input_cache_creation")) or 0
            # Only split when the TTL breakdown fits inside the reported cache-write total;
            # otherwise the two disagree and the reported total is the safer number.
            if (five or hour) and five + hour <= total:
                usage["input_cache_creation_5m"] = five
                usage["input_cache_creation_1h"] = hour
                usage["input_cache_creation"] = total - five - hour
    bedrock = meta.get("bedrock")
    if isinstance(bedrock, dict) and isinstance(bedrock.get("usage"), dict):
        bu = bedrock["usage"]
        _fill(usage, "input_cache_read", bu.get("cacheReadInputTokens"))
        _fill(usage, "input_cache_write", bu.get("cacheWriteInputTokens"))
        _fill(usage, "input_cache_creation", bu.get("cacheCreationInputTokens"))


def _fill(usage: dict[str, Any], key: str, value: Any) -> None:
    if usage.get(key) is None:
        n = to_number(value)
        if n is not None:
            usage[key] = n


def _subtract_parts(usage: dict[str, Any]) -> None:
    """Remove the separately reported parts from input/output (all values are numbers here)."""
    if usage.keys().isdisjoint(_PART_KEYS):
        return
    get = usage.get
    if "input" in usage:
        parts = sum(get(k) or 0 for k in _INPUT_PARTS)
        if parts:
            usage["input"] = max(usage["input"] - parts, 0)
    if "output" in usage:
        parts = sum(get(k) or 0 for k in _OUTPUT_PARTS)
        if parts:
            usage["output"] = max(usage["output"] - parts, 0)


def _genkit_usage(attrs: dict[str, Any], counters: Sequence[tuple[str, Any]]) -> dict[str, Any]:
    out = parse_json(attrs.get("genkit:output"))
    usage = out.get("usage") if isinstance(out, dict) else None
    if not isinstance(usage, dict):
        return _generic_usage(attrs, counters)
    result: dict[str, Any] = {}
    inp = to_number(usage.get("inputTokens"))
    outp = to_number(usage.get("outputTokens"))
    thoughts = to_number(usage.get("thoughtsTokens"))
    total = to_number(usage.get("totalTokens"))
    if inp is not None:
        result["input"] = inp
    if outp is not None:
        result["output"] = max(outp - (thoughts or 0), 0)
    if thoughts:
        result["output_reasoning"] = thoughts
    if total is not None:
        result["total"] = total
    return result


_COST_KEYS = frozenset({"langfuse.observation.cost_details", "gen_ai.usage.cost", "llm.cost.total"})


def extract_cost_details(attrs: dict[str, Any]) -> dict[str, Any] | None:
    if attrs.keys().isdisjoint(_COST_KEYS):
        return None
    raw = attrs.get("langfuse.observation.cost_details")
    if raw is not None:
        explicit = json_object(raw)
        if explicit:
            return explicit
    for key in ("gen_ai.usage.cost", "llm.cost.total"):
        raw = attrs.get(key)
        if raw is not None:
            cost = to_number(raw)
            if cost is not None and cost >= 0:
                return {"total": cost}
    return None
