"""Per-field mappings from OTLP span attributes to Langfuse trace/observation fields (api-semantics 4.5).

Every function takes the decoded attribute dict of one span (see otlp_decode) and returns the
field value, or None when the span does not carry it - callers omit None so that a later event
for the same entity never blanks a value set by an earlier one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lightfuse.ingest.otlp_util import (
    NOT_JSON,
    as_text,
    dumps_str,
    json_object,
    normalize_environment,
    parse_iso_ms,
    parse_json,
    to_number,
    valid_ms,
)

_ENV_KEYS = ("langfuse.environment", "deployment.environment.name", "deployment.environment")

_USER_KEYS = (
    "langfuse.user.id",
    "user.id",
    "langfuse.observation.metadata.langfuse_user_id",
    "langfuse.trace.metadata.langfuse_user_id",
    "ai.telemetry.metadata.userId",
)
_SESSION_KEYS = (
    "langfuse.session.id",
    "session.id",
    "gen_ai.conversation.id",
    "langfuse.observation.metadata.langfuse_session_id",
    "langfuse.trace.metadata.langfuse_session_id",
    "ai.telemetry.metadata.sessionId",
)
_TAG_KEYS = (
    "langfuse.trace.tags",
    "langfuse.tags",
    "langfuse.observation.metadata.langfuse_tags",
    "langfuse.trace.metadata.langfuse_tags",
    "ai.telemetry.metadata.tags",
    "tag.tags",
)
# Attributes that make a non-root span update its trace (4.3).
TRACE_UPDATE_KEYS = (
    "langfuse.trace.name",
    "langfuse.trace.input",
    "langfuse.trace.output",
    "langfuse.trace.metadata",
    "langfuse.trace.public",
    "langfuse.trace.tags",
    "user.id",
    "session.id",
    "langfuse.user.id",
    "langfuse.session.id",
    "langfuse.observation.metadata.langfuse_user_id",
    "langfuse.observation.metadata.langfuse_session_id",
    "langfuse.observation.metadata.langfuse_tags",
    "ai.telemetry.metadata.sessionId",
    "ai.telemetry.metadata.userId",
    "ai.telemetry.metadata.tags",
    "tag.tags",
)
_MODEL_KEYS = (
    "langfuse.observation.model.name",
    "gen_ai.response.model",
    "ai.model.id",
    "gen_ai.request.model",
    "llm.response.model",
    "llm.model_name",
    "model",
)
_LEVELS = {
    "trace": "DEBUG",
    "verbose": "DEBUG",
    "debug": "DEBUG",
    "info": "DEFAULT",
    "log": "DEFAULT",
    "notice": "DEFAULT",
    "ok": "DEFAULT",
    "success": "DEFAULT",
    "default": "DEFAULT",
    "warn": "WARNING",
    "warning": "WARNING",
    "error": "ERROR",
    "fatal": "ERROR",
    "critical": "ERROR",
}
# LiveKit emits many internal pipeline spans; they are noise at DEFAULT level.
_LIVEKIT_DEBUG_SPANS = frozenset(
    {
        "user_speaking",
        "eou_detection",
        "llm_request_run",
        "tts_node",
        "tts_request",
        "tts_request_run",
        "tts_stream_adapter",
        "agent_speaking",
        "drain_agent_activity",
        "on_exit",
        "on_enter",
        "llm_fallback_adapter",
        "tts_fallback_adapter",
        "start_agent_activity",
    }
)
_AI_SDK_RESERVED_METADATA = frozenset(
    {
        "ai.telemetry.metadata.userId",
        "ai.telemetry.metadata.sessionId",
        "ai.telemetry.metadata.tags",
        "ai.telemetry.metadata.langfusePrompt",
    }
)
_METADATA_KEYS = frozenset(
    {"langfuse.observation.metadata", "langfuse.trace.metadata", "langfuse.metadata", "ai.prompt.tools"}
)
_OBS_META_PREFIXES = ("langfuse.observation.metadata.", "langfuse.metadata.", "ai.telemetry.metadata.")
_TRACE_META_PREFIXES = ("langfuse.trace.metadata.", "langfuse.metadata.", "ai.telemetry.metadata.")


_NAME_KEYS = frozenset(
    {"gen_ai.tool.name", "genkit:name", "logfire.msg", "ai.toolCall.name", "ai.operationId"}
)
ENV_KEY_SET = frozenset(_ENV_KEYS)
_TRACE_UPDATE_KEY_SET = frozenset(TRACE_UPDATE_KEYS)
_MODEL_KEY_SET = frozenset(_MODEL_KEYS)
_CST_KEYS = frozenset(
    {"langfuse.observation.completion_start_time", "ai.response.msToFirstChunk", "ai.stream.msToFirstChunk"}
)
_PROMPT_KEYS = frozenset(
    {
        "langfuse.observation.prompt.name",
        "langfuse.observation.prompt.version",
        "langfuse.prompt.name",
        "langfuse.prompt.version",
        "ai.telemetry.metadata.langfusePrompt",
    }
)
_PARAM_JSON_KEYS = frozenset(
    {"langfuse.observation.model.parameters", "llm.invocation_parameters", "model_config"}
)

# Every exact key any function in this module (or cost/usage_details) reads. A span with none
# of them gets default values for all fields (see otlp_mapping's fast path).
FIELD_KEYS = frozenset(
    {
        *_NAME_KEYS,
        *ENV_KEY_SET,
        *_TRACE_UPDATE_KEY_SET,
        *_USER_KEYS,
        *_SESSION_KEYS,
        *_TAG_KEYS,
        *_MODEL_KEY_SET,
        *_CST_KEYS,
        *_PROMPT_KEYS,
        *_PARAM_JSON_KEYS,
        "langfuse.observation.level",
        "langfuse.observation.status_message",
        "langfuse.version",
        "langfuse.release",
        "langfuse.public",
        "langfuse.internal.as_root",
        "langfuse.observation.usage_details",
        "langfuse.observation.cost_details",
        "gen_ai.usage.cost",
        "llm.cost.total",
        "gen_ai.operation.name",
    }
)

# Most spans carry none of the keys a field is read from; every extractor below starts with one
# set-disjointness test (C speed) before doing its per-key lookups.


def span_name(name: str, attrs: dict[str, Any]) -> str:
    if attrs.keys().isdisjoint(_NAME_KEYS):
        return name
    for key in ("gen_ai.tool.name", "genkit:name", "logfire.msg"):
        value = attrs.get(key)
        if value:
            return as_text(value)
    if "ai.toolCall.name" in attrs:
        return as_text(attrs["ai.toolCall.name"])
    if "ai.operationId" in attrs:
        function_id = attrs.get("ai.telemetry.functionId")
        operation = as_text(attrs["ai.operationId"])
        return f"{as_text(function_id)}:{operation}" if function_id else operation
    return name


def environment(attrs: dict[str, Any], resource: dict[str, Any]) -> str:
    if attrs.keys().isdisjoint(ENV_KEY_SET) and resource.keys().isdisjoint(ENV_KEY_SET):
        return "default"
    for key in _ENV_KEYS:
        value = attrs.get(key) or resource.get(key)
        if value:
            return normalize_environment(value)
    return "default"


def _first_text(attrs: dict[str, Any], keys: tuple[str, ...]) -> str | None:
    for key in keys:
        value = attrs.get(key)
        if value:
            return as_text(value)
    return None


def user_id(attrs: dict[str, Any]) -> str | None:
    return _first_text(attrs, _USER_KEYS)


def session_id(attrs: dict[str, Any]) -> str | None:
    return _first_text(attrs, _SESSION_KEYS)


def tags(attrs: dict[str, Any]) -> list[str] | None:
    value = None
    for key in _TAG_KEYS:
        value = attrs.get(key)
        if value:
            break
    if not value:
        return None
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            parsed = parse_json(text)
            if isinstance(parsed, list):
                value = parsed
        if isinstance(value, str):
            items = [t.strip() for t in value.split(",")] if "," in value else [value]
            return [t for t in items if t] or None
    if isinstance(value, list):
        return [t if isinstance(t, str) else dumps_str(t) for t in value if t is not None] or None
    return [as_text(value)]


def public(attrs: dict[str, Any]) -> bool | None:
    value = attrs.get("langfuse.trace.public")
    if value is None:
        value = attrs.get("langfuse.public")
    if value is None:
        return None
    return value is True or value == "true"


def version(attrs: dict[str, Any], resource: dict[str, Any]) -> str | None:
    value = attrs.get("langfuse.version")
    if value is None:
        value = resource.get("service.version")
    return None if value is None or value == "" else as_text(value)


def release(attrs: dict[str, Any], resource: dict[str, Any]) -> str | None:
    value = attrs.get("langfuse.release")
    if value is None:
        value = resource.get("langfuse.release")
    return None if value is None or value == "" else as_text(value)


def level(attrs: dict[str, Any], status_code: int, scope_name: str, name: str) -> str:
    explicit = attrs.get("langfuse.observation.level")
    if isinstance(explicit, str):
        mapped = _LEVELS.get(explicit.strip().lower())
        if mapped:
            return mapped
    if status_code == 2:
        return "ERROR"
    if scope_name == "livekit-agents" and name in _LIVEKIT_DEBUG_SPANS:
        return "DEBUG"
    return "DEFAULT"


def status_message(attrs: dict[str, Any], status: dict[str, Any]) -> str | None:
    value = attrs.get("langfuse.observation.status_message")
    if value is not None and value != "":
        return as_text(value)
    message = status.get("message")
    return message or None


def has_trace_updates(attrs: dict[str, Any], any_trace_metadata_key: bool) -> bool:
    if any_trace_metadata_key:
        return True
    if attrs.keys().isdisjoint(_TRACE_UPDATE_KEY_SET):
        return False
    for key in TRACE_UPDATE_KEYS:
        if attrs.get(key):
            return True
    return False


def metadata(
    attrs: dict[str, Any], domain: str, dotted: Sequence[tuple[str, Any]], *, json_values: bool = False
) -> dict[str, Any]:
    """Langfuse metadata carried by span attributes, for domain "observation" or "trace".

    A JSON object in the bare key is the base; dotted keys (`<prefix>.<k>`, pre-collected by
    otlp_scan into ``dotted``) are layered on top. ``json_values``: the dotted values are JSON
    texts (Langfuse SDKs >= 5 encode every value, strings included, so "123" and 123 stay
    distinct); they are decoded, and a value that is not valid JSON is kept as sent.
    """
    if not dotted and attrs.keys().isdisjoint(_METADATA_KEYS):
        return {}
    if domain == "trace":
        base_key, prefixes = "langfuse.trace.metadata", _TRACE_META_PREFIXES
    else:
        base_key, prefixes = "langfuse.observation.metadata", _OBS_META_PREFIXES
    result: dict[str, Any] = {}
    base = attrs.get(base_key) or attrs.get("langfuse.metadata")
    if base:
        obj = json_object(base)
        if obj:
            result.update(obj)
    for key, value in dotted:
        if key.startswith(prefixes) and key not in _AI_SDK_RESERVED_METADATA:
            for prefix in prefixes:
                if key.startswith(prefix):
                    if json_values:
                        parsed = parse_json(value)
                        # A decoded string that is itself JSON text ("123", "[1]") keeps its encoded form:
                        # every read parses top-level string values (api-semantics 2.4), which gives back
                        # exactly the string the SDK was given instead of turning it into a number.
                        if parsed is not NOT_JSON and not (
                            isinstance(parsed, str) and parse_json(parsed) is not NOT_JSON
                        ):
                            value = parsed
                    result[key[len(prefix) :]] = value
                    break
    tools = attrs.get("ai.prompt.tools")
    if tools:
        result["tools"] = tools
    return result


def is_ai_sdk_agent_span(attrs: dict[str, Any], scope_name: str) -> bool:
    # The AI SDK repeats the aggregated usage of its model calls on the agent span; counting
    # both would double the cost.
    return scope_name == "ai" and attrs.get("gen_ai.operation.name") in ("invoke_agent", "agent_step")


def model(attrs: dict[str, Any], scope_name: str) -> str | None:
    if scope_name != "genkit-tracer" and attrs.keys().isdisjoint(_MODEL_KEY_SET):
        return None
    found = _first_text(attrs, _MODEL_KEYS)
    if (
        found is None
        and scope_name == "genkit-tracer"
        and attrs.get("genkit:metadata:subtype")
        in (
            "model",
            "background-model",
        )
    ):
        found = _first_text(attrs, ("genkit:name",))
    return found


def _sanitize_params(params: dict[str, Any]) -> dict[str, Any] | None:
    # The ingestion schema allows string/number values; everything else travels as JSON text.
    out: dict[str, Any] = {}
    for key, value in params.items():
        if (
            value is None
            or isinstance(value, str)
            or (isinstance(value, (int, float)) and not isinstance(value, bool))
        ):
            out[key] = value
        else:
            out[key] = dumps_str(value)
    return out or None


def _text_or_none(attrs: dict[str, Any], *keys: str) -> str | None:
    for key in keys:
        if key in attrs:
            value = attrs[key]
            return None if value is None else (value if isinstance(value, str) else dumps_str(value))
    return None


def model_parameters(
    attrs: dict[str, Any], scope_name: str, prefixed: Sequence[tuple[str, Any]]
) -> dict[str, Any] | None:
    """``prefixed``: (name, value) of `gen_ai.request.*` / `llm.invocation_parameters.*` keys."""
    if (
        not prefixed
        and scope_name not in ("ai", "genkit-tracer")
        and attrs.keys().isdisjoint(_PARAM_JSON_KEYS)
    ):
        return None
    raw = attrs.get("langfuse.observation.model.parameters")
    explicit = json_object(raw) if raw is not None else None
    if scope_name == "ai":
        params: dict[str, Any] = {
            "maxSteps": _text_or_none(attrs, "ai.settings.maxSteps"),
            "toolChoice": _text_or_none(attrs, "ai.prompt.toolChoice"),
            "maxTokens": _text_or_none(attrs, "gen_ai.request.max_tokens"),
            "finishReason": _text_or_none(attrs, "gen_ai.response.finish_reasons", "gen_ai.finishReason"),
            "system": _text_or_none(attrs, "gen_ai.system", "ai.model.provider"),
            "maxRetries": _text_or_none(attrs, "ai.settings.maxRetries"),
            "mode": _text_or_none(attrs, "ai.settings.mode"),
            "temperature": _text_or_none(attrs, "gen_ai.request.temperature"),
            "service_tier": _text_or_none(
                attrs, "ai.settings.providerOptions.openai.serviceTier", "service_tier"
            ),
        }
        if explicit:
            params.update(explicit)
        return _sanitize_params(params)
    if explicit is not None:
        return _sanitize_params(explicit)
    if scope_name == "genkit-tracer":
        genkit_input = parse_json(attrs.get("genkit:input"))
        if isinstance(genkit_input, dict) and isinstance(genkit_input.get("config"), dict):
            return _sanitize_params(genkit_input["config"])
    for key in ("llm.invocation_parameters", "model_config"):
        raw = attrs.get(key)
        obj = json_object(raw) if raw is not None else None
        if obj is not None:
            return _sanitize_params(obj)
    if not prefixed:
        return None
    return _sanitize_params({name: value for name, value in prefixed if name != "model"})


def completion_start_time(attrs: dict[str, Any], start_ms: int) -> int | None:
    """Epoch ms when the first token arrived, if the span says."""
    if attrs.keys().isdisjoint(_CST_KEYS):
        return None
    raw = attrs.get("langfuse.observation.completion_start_time")
    if raw is not None:
        ms = parse_iso_ms(raw)
        if ms is None:
            # Older SDKs double-encode the timestamp: "\"2025-10-01T08:45:26.112648Z\"".
            inner = parse_json(raw)
            ms = parse_iso_ms(inner) if inner is not NOT_JSON else None
        if ms is not None:
            return ms
    first_chunk = attrs.get("ai.response.msToFirstChunk")
    if first_chunk is None:
        first_chunk = attrs.get("ai.stream.msToFirstChunk")
    delay = to_number(first_chunk)
    if delay:
        ms = start_ms + -int(-delay // 1)  # ceil, as the delay is fractional ms
        return ms if valid_ms(ms) else None  # a broken clock's value counts as absent
    return None


def prompt_link(attrs: dict[str, Any]) -> tuple[str, int] | None:
    """(promptName, promptVersion) - the ingestion API rejects one without the other."""
    if attrs.keys().isdisjoint(_PROMPT_KEYS):
        return None
    name = attrs.get("langfuse.observation.prompt.name")
    ver = attrs.get("langfuse.observation.prompt.version")
    if name is None:
        name = attrs.get("langfuse.prompt.name")
    if ver is None:
        ver = attrs.get("langfuse.prompt.version")
    if name is None or ver is None:
        ai_prompt = json_object(attrs.get("ai.telemetry.metadata.langfusePrompt"))
        if ai_prompt:
            name = name if name is not None else ai_prompt.get("name")
            ver = ver if ver is not None else ai_prompt.get("version")
    number = to_number(ver)
    if not isinstance(name, str) or not name or not isinstance(number, int):
        return None
    return name, number
