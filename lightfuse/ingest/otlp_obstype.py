"""Observation type resolution for OTLP spans (api-semantics 4.6).

Each resolver looks at one instrumentation convention. They run in priority order; the first
that returns a type wins, a resolver that recognises its convention but cannot map the value
returns None and lets the next one try. Nothing matching means SPAN.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

OBSERVATION_TYPES = frozenset(
    {
        "SPAN",
        "GENERATION",
        "EVENT",
        "AGENT",
        "TOOL",
        "CHAIN",
        "RETRIEVER",
        "EVALUATOR",
        "EMBEDDING",
        "GUARDRAIL",
    }
)

_LANGFUSE_TYPES = {t.lower(): t for t in OBSERVATION_TYPES}

_OPENINFERENCE = {
    "LLM": "GENERATION",
    "CHAIN": "CHAIN",
    "RETRIEVER": "RETRIEVER",
    "EMBEDDING": "EMBEDDING",
    "AGENT": "AGENT",
    "TOOL": "TOOL",
    "GUARDRAIL": "GUARDRAIL",
    "EVALUATOR": "EVALUATOR",
}

_GENAI_OPERATION = {
    "chat": "GENERATION",
    "completion": "GENERATION",
    "text_completion": "GENERATION",
    "generate_content": "GENERATION",
    "generate": "GENERATION",
    "embeddings": "EMBEDDING",
    "invoke_agent": "AGENT",
    "create_agent": "AGENT",
    "execute_tool": "TOOL",
}

_GENKIT_SUBTYPE = {
    "model": "GENERATION",
    "background-model": "GENERATION",
    "embedder": "EMBEDDING",
    "tool": "TOOL",
    "tool.v2": "TOOL",
    "retriever": "RETRIEVER",
    "evaluator": "EVALUATOR",
}

# Attributes the Python SDK <= 3.3 set on generations it mislabelled as spans.
_GENERATION_HINTS = (
    "langfuse.observation.model.name",
    "langfuse.observation.cost_details",
    "langfuse.observation.usage_details",
    "langfuse.observation.completion_start_time",
    "langfuse.observation.model.parameters",
    "langfuse.observation.prompt.name",
    "langfuse.observation.prompt.version",
)

_VERCEL_GENERATION = (
    "ai.generateText.doGenerate",
    "ai.streamText.doStream",
    "ai.generateObject.doGenerate",
    "ai.streamObject.doStream",
)
_VERCEL_EMBEDDING = ("ai.embedMany.doEmbed", "ai.embed.doEmbed")
_VERCEL_MODEL_KEYS = (
    "langfuse.observation.model.name",
    "ai.model.id",
    "gen_ai.request.model",
    "gen_ai.response.model",
)
_MODEL_KEYS = (
    "langfuse.observation.model.name",
    "gen_ai.request.model",
    "gen_ai.response.model",
    "llm.model_name",
    "model",
)


def _meaningful(value: Any) -> bool:
    return value is not None and value != "" and value != [] and value != {}


def _python_sdk_quirk(attrs: dict, resource: dict, scope: dict, span_name: str) -> str | None:
    if attrs.get("langfuse.observation.type") != "span" or scope.get("name") != "langfuse-sdk":
        return None
    if resource.get("telemetry.sdk.language") != "python":
        return None
    version = scope.get("version") or ""
    if version:
        try:
            major, minor = (int(x) for x in version.split(".")[:2])
        except ValueError:
            major, minor = 0, 0
        if (major, minor) > (3, 3):
            return None
    return "GENERATION" if any(k in attrs for k in _GENERATION_HINTS) else None


def _langfuse(attrs: dict, resource: dict, scope: dict, span_name: str) -> str | None:
    value = attrs.get("langfuse.observation.type")
    return _LANGFUSE_TYPES.get(value) if isinstance(value, str) else None


def _openinference(attrs: dict, resource: dict, scope: dict, span_name: str) -> str | None:
    value = attrs.get("openinference.span.kind")
    return _OPENINFERENCE.get(value) if isinstance(value, str) else None


def _genai_operation(attrs: dict, resource: dict, scope: dict, span_name: str) -> str | None:
    value = attrs.get("gen_ai.operation.name")
    return _GENAI_OPERATION.get(value) if isinstance(value, str) else None


def _genkit(attrs: dict, resource: dict, scope: dict, span_name: str) -> str | None:
    value = attrs.get("genkit:metadata:subtype")
    return _GENKIT_SUBTYPE.get(value) if isinstance(value, str) else None


def _vercel_operation(attrs: dict, names: tuple[str, ...]) -> bool:
    # AI SDK appends the function id to operation.name ("ai.streamText.doStream my-fn").
    op_name = attrs.get("operation.name")
    if isinstance(op_name, str) and op_name.startswith(names):
        return True
    op_id = attrs.get("ai.operationId")
    return isinstance(op_id, str) and op_id in names


def _vercel_model_call(attrs: dict, resource: dict, scope: dict, span_name: str) -> str | None:
    if not any(_meaningful(attrs.get(k)) for k in _VERCEL_MODEL_KEYS):
        return None
    if _vercel_operation(attrs, _VERCEL_GENERATION):
        return "GENERATION"
    if _vercel_operation(attrs, _VERCEL_EMBEDDING):
        return "EMBEDDING"
    return None


def _vercel_tool(attrs: dict, resource: dict, scope: dict, span_name: str) -> str | None:
    return "TOOL" if _vercel_operation(attrs, ("ai.toolCall",)) else None


def _genai_tool(attrs: dict, resource: dict, scope: dict, span_name: str) -> str | None:
    if _meaningful(attrs.get("gen_ai.tool.name")) or _meaningful(attrs.get("gen_ai.tool.call.id")):
        return "TOOL"
    return None


def _flue(attrs: dict, resource: dict, scope: dict, span_name: str) -> str | None:
    if _meaningful(attrs.get("flue.tool.name")) or _meaningful(attrs.get("flue.tool.call_id")):
        return "TOOL"
    if _meaningful(attrs.get("flue.task.id")) or _meaningful(attrs.get("flue.task.agent")):
        return "AGENT"
    return None


def _livekit(attrs: dict, resource: dict, scope: dict, span_name: str) -> str | None:
    if scope.get("name") != "livekit-agents":
        return None
    if span_name in ("agent_turn", "start_agent_activity"):
        return "AGENT"
    return "TOOL" if span_name == "function_tool" else None


def _any_model(attrs: dict, resource: dict, scope: dict, span_name: str) -> str | None:
    return "GENERATION" if any(_meaningful(attrs.get(k)) for k in _MODEL_KEYS) else None


_RESOLVERS: tuple[Callable[[dict, dict, dict, str], str | None], ...] = (
    _python_sdk_quirk,
    _langfuse,
    _openinference,
    _genai_operation,
    _genkit,
    _vercel_model_call,
    _vercel_tool,
    _genai_tool,
    _flue,
    _livekit,
    _any_model,
)


# Every span attribute any resolver reads; a span with none of them is a SPAN (LiveKit aside,
# which goes by span name).
_TYPE_KEYS = frozenset(
    {
        "langfuse.observation.type",
        "openinference.span.kind",
        "gen_ai.operation.name",
        "genkit:metadata:subtype",
        "operation.name",
        "ai.operationId",
        "gen_ai.tool.name",
        "gen_ai.tool.call.id",
        "flue.tool.name",
        "flue.tool.call_id",
        "flue.task.id",
        "flue.task.agent",
        *_VERCEL_MODEL_KEYS,
        *_MODEL_KEYS,
    }
)


def observation_type(
    attrs: dict[str, Any], resource: dict[str, Any], scope: dict[str, Any], span_name: str
) -> str:
    """The Langfuse observation type (upper case) for a span."""
    if attrs.keys().isdisjoint(_TYPE_KEYS) and scope.get("name") != "livekit-agents":
        return "SPAN"
    # Fast path for the three common conventions; equivalent to running resolvers 1-3 (the
    # Python SDK quirk only concerns langfuse.observation.type == "span").
    value = attrs.get("langfuse.observation.type")
    if value is not None and value != "span":
        found = _LANGFUSE_TYPES.get(value) if isinstance(value, str) else None
        if found is None:
            found = _openinference(attrs, resource, scope, span_name) or _genai_operation(
                attrs, resource, scope, span_name
            )
        if found is not None:
            return found
        return _resolve(attrs, resource, scope, span_name, 4)
    if value is None:
        kind = attrs.get("openinference.span.kind")
        found = _OPENINFERENCE.get(kind) if isinstance(kind, str) else None
        if found is not None:
            return found
        return _resolve(attrs, resource, scope, span_name, 3)
    return _resolve(attrs, resource, scope, span_name, 0)


def _resolve(
    attrs: dict[str, Any], resource: dict[str, Any], scope: dict[str, Any], span_name: str, first: int
) -> str:
    for resolve in _RESOLVERS[first:]:
        found = resolve(attrs, resource, scope, span_name)
        if found is not None:
            return found
    return "SPAN"
