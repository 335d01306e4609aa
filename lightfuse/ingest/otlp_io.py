"""Input/output extraction for OTLP spans (api-semantics 4.4).

Instrumentation libraries disagree on where prompts and completions live, so the rules are tried
in a fixed priority order and the first one that yields an input or an output wins (both sides
then come from that rule). Values are returned as the attributes carry them - usually JSON text -
because the ingestion pipeline stores strings verbatim and parses them on read; decoding here
would only cost time on the hot path. Rules that must restructure data (rebuilt flattened keys,
system-instruction prepending, span events) return Python structures.
"""

from __future__ import annotations

from typing import Any

from lightfuse.ingest.otlp_util import NOT_JSON, parse_json

# Keys consumed by IO extraction. They are dropped from the `attributes` copy kept in metadata
# so a 50 kB prompt is not stored twice.
IO_KEYS = frozenset(
    {
        "langfuse.trace.input",
        "langfuse.trace.output",
        "langfuse.observation.input",
        "langfuse.observation.output",
        "genkit:input",
        "genkit:output",
        "ai.prompt.messages",
        "ai.prompt",
        "ai.toolCall.args",
        "ai.response.text",
        "ai.result.text",
        "ai.toolCall.result",
        "ai.response.object",
        "ai.result.object",
        "ai.response.toolCalls",
        "ai.result.toolCalls",
        "flue.turn.input",
        "flue.tool.arguments",
        "flue.task.prompt",
        "flue.workflow.payload",
        "flue.turn.output",
        "flue.tool.result",
        "flue.task.result",
        "flue.operation.result",
        "flue.workflow.result",
        "gcp.vertex.agent.llm_request",
        "gcp.vertex.agent.llm_response",
        "gcp.vertex.agent.tool_call_args",
        "gcp.vertex.agent.tool_response",
        "prompt",
        "all_messages_events",
        "events",
        "lk.input_text",
        "lk.user_transcript",
        "lk.chat_ctx",
        "lk.user_input",
        "lk.function_tool.output",
        "lk.response.text",
        "mlflow.spanInputs",
        "mlflow.spanOutputs",
        "traceloop.entity.input",
        "traceloop.entity.output",
        "input.value",
        "output.value",
        "input",
        "output",
        "pydantic_ai.all_messages",
        "final_result",
        "tool_arguments",
        "tool_response",
        "gen_ai.input.messages",
        "gen_ai.output.messages",
        "gen_ai.system_instructions",
        "gen_ai.tool.call.arguments",
        "gen_ai.tool.call.result",
    }
)
IO_PREFIXES = (
    "gen_ai.prompt",
    "gen_ai.completion",
    "llm.input_messages",
    "llm.output_messages",
    "langfuse.trace.metadata",
    "langfuse.observation.metadata",
    "ai.telemetry.metadata",
)

# Keys read by rules 8-14; a span carrying none of them skips those rules in one set operation.
_MIDDLE_RULE_KEYS = frozenset(
    {
        "gcp.vertex.agent.llm_request",
        "gcp.vertex.agent.llm_response",
        "gcp.vertex.agent.tool_call_args",
        "gcp.vertex.agent.tool_response",
        "prompt",
        "all_messages_events",
        "lk.input_text",
        "lk.user_transcript",
        "lk.chat_ctx",
        "lk.function_tool.output",
        "lk.response.text",
        "events",
        "mlflow.spanInputs",
        "mlflow.spanOutputs",
        "traceloop.entity.input",
        "traceloop.entity.output",
        "input.value",
        "output.value",
        "input",
        "output",
        "pydantic_ai.all_messages",
        "final_result",
        "tool_arguments",
        "tool_response",
    }
)

_INPUT_EVENT_ROLES = {
    "gen_ai.system.message": "system",
    "gen_ai.user.message": "user",
    "gen_ai.assistant.message": "assistant",
    "gen_ai.tool.message": "tool",
}

_FLUE_INPUT = ("flue.turn.input", "flue.tool.arguments", "flue.task.prompt", "flue.workflow.payload")
_FLUE_OUTPUT = (
    "flue.turn.output",
    "flue.tool.result",
    "flue.task.result",
    "flue.operation.result",
    "flue.workflow.result",
)

# Rebuilding flattened keys allocates list slots up to the largest index seen; a single hostile
# key like `gen_ai.prompt.99999999.content` must not allocate gigabytes.
MAX_ARRAY_SLOTS = 10_001
_UNSAFE_KEYS = frozenset({"__proto__", "constructor", "prototype"})

FLAT_PREFIXES = ("gen_ai.prompt", "gen_ai.completion", "llm.input_messages", "llm.output_messages")
# prefix -> [(rest of the key after "prefix.", value)]
FlatKeys = dict[str, list[tuple[str, Any]]]


def extract_io(
    attrs: dict[str, Any],
    events: list[dict],
    scope_name: str,
    *,
    trace_domain: bool = False,
    flat: FlatKeys | None = None,
) -> tuple[Any, Any]:
    """Return (input, output) for a span; (None, None) when no rule matches.

    ``flat``: the span's flattened message keys if the caller already collected them (otlp_scan).
    """
    get = attrs.get
    # 1. Langfuse SDK attributes; a root span's trace IO may be set separately.
    inp = get("langfuse.trace.input") if trace_domain else None
    if not inp:
        inp = get("langfuse.observation.input")
    out = get("langfuse.trace.output") if trace_domain else None
    if not out:
        out = get("langfuse.observation.output")
    if inp is not None or out is not None:
        return inp, out

    # 2. Firebase Genkit
    if scope_name == "genkit-tracer":
        inp, out = _genkit(get("genkit:input"), "messages"), _genkit(get("genkit:output"), "message")
        if inp is not None or out is not None:
            return inp, out

    # 3. Vercel AI SDK: its scope is authoritative, even when nothing was recorded.
    if scope_name == "ai":
        return _vercel(attrs, collect_flat(attrs) if flat is None else flat)

    # 4. Flue
    if scope_name == "@flue/opentelemetry":
        inp = _first_present(attrs, _FLUE_INPUT)
        out = _first_present(attrs, _FLUE_OUTPUT)
        if inp is not None or out is not None:
            return _json_or_raw(inp), _json_or_raw(out)

    if events:
        found = _from_span_events(events, scope_name)
        if found is not None:
            return found

    if not attrs.keys().isdisjoint(_MIDDLE_RULE_KEYS):
        found = _middle_rules(attrs, scope_name)
        if found is not None:
            return found

    # 15a. flattened TraceLoop / OpenInference message keys
    if flat is None:
        flat = collect_flat(attrs)
    for in_prefix, out_prefix in (
        ("gen_ai.prompt", "gen_ai.completion"),
        ("llm.input_messages", "llm.output_messages"),
    ):
        inp, out = unflatten(attrs, in_prefix, flat), unflatten(attrs, out_prefix, flat)
        if inp is not None or out is not None:
            return inp, out

    # 15b. OTel GenAI semantic conventions
    return _genai_messages(attrs)


def _middle_rules(attrs: dict[str, Any], scope_name: str) -> tuple[Any, Any] | None:
    """Rules 8-14. A rule whose keys are all absent cannot match, so it is skipped via ``present``."""
    present = attrs.keys() & _MIDDLE_RULE_KEYS
    get = attrs.get
    if present <= _OPENINFERENCE_VALUE_KEYS and scope_name != "pydantic-ai":
        # Only input.value/output.value: rules 8-13 cannot match; this is most OpenInference spans.
        inp, out = get("input.value"), get("output.value")
        return (inp, out) if inp or out else None
    # 8. Google ADK: llm_request/response are "{}" on tool spans, which use tool_* instead.
    if not present.isdisjoint(_ADK_KEYS):
        inp = get("gcp.vertex.agent.llm_request")
        out = get("gcp.vertex.agent.llm_response")
        if not inp or inp == "{}":
            inp = get("gcp.vertex.agent.tool_call_args")
        if not out or out == "{}":
            out = get("gcp.vertex.agent.tool_response")
        if inp or out:
            return inp, out

    # 9. Logfire
    if "prompt" in present or "all_messages_events" in present:
        inp, out = get("prompt"), get("all_messages_events")
        if inp or out:
            return inp, out

    # 10. LiveKit
    if not present.isdisjoint(_LIVEKIT_KEYS):
        inp = _first_not_none(get("lk.input_text"), get("lk.user_transcript"), get("lk.chat_ctx"))
        out = get("lk.function_tool.output") or get("lk.response.text")
        if inp or out:
            return inp, out

    # 11. Logfire GenAI `events` array
    if "events" in present:
        found = _logfire_events(get("events"))
        if found is not None:
            return found

    # 12. MLflow, 13. TraceLoop entities, 14. OpenInference/SmolAgents then Pydantic/Pipecat
    for in_key, out_key in _PAIRS:
        if in_key in present or out_key in present:
            inp, out = get(in_key), get(out_key)
            if inp or out:
                return inp, out
    if scope_name == "pydantic-ai":
        inp = get("pydantic_ai.all_messages")
        if inp:
            inp = _with_system_instructions(inp, get("gen_ai.system_instructions"))
        out = get("final_result")
        if inp or out:
            return inp, out
    if "tool_arguments" in present or "tool_response" in present:
        inp, out = get("tool_arguments"), get("tool_response")
        if inp or out:
            return inp, out
    return None


_OPENINFERENCE_VALUE_KEYS = frozenset({"input.value", "output.value"})
_ADK_KEYS = frozenset(
    {
        "gcp.vertex.agent.llm_request",
        "gcp.vertex.agent.llm_response",
        "gcp.vertex.agent.tool_call_args",
        "gcp.vertex.agent.tool_response",
    }
)
_LIVEKIT_KEYS = frozenset(
    {"lk.input_text", "lk.user_transcript", "lk.chat_ctx", "lk.function_tool.output", "lk.response.text"}
)
_PAIRS = (
    ("mlflow.spanInputs", "mlflow.spanOutputs"),
    ("traceloop.entity.input", "traceloop.entity.output"),
    ("input.value", "output.value"),
    ("input", "output"),
)


def _first_present(attrs: dict[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        value = attrs.get(key)
        if value is not None:
            return value
    return None


def _first_not_none(*values: Any) -> Any:
    for value in values:
        if value is not None:
            return value
    return None


def _json_or_raw(value: Any) -> Any:
    parsed = parse_json(value)
    return value if parsed is NOT_JSON else parsed


def _genkit(raw: Any, field: str) -> Any:
    if raw is None:
        return None
    parsed = parse_json(raw)
    if isinstance(parsed, dict) and parsed.get(field) is not None:
        return parsed[field]
    return raw if parsed is NOT_JSON else parsed


def _vercel(attrs: dict[str, Any], flat: FlatKeys) -> tuple[Any, Any]:
    inp = _first_present(attrs, ("ai.prompt.messages", "ai.prompt", "ai.toolCall.args"))
    if "ai.response.text" in attrs and "ai.response.toolCalls" in attrs:
        # A turn that both spoke and called tools; keep both in one assistant message.
        out: Any = {
            "role": "assistant",
            "content": attrs["ai.response.text"],
            "tool_calls": attrs["ai.response.toolCalls"],
        }
    elif attrs.get("ai.response.text"):
        out = attrs["ai.response.text"]
    else:
        out = _first_present(
            attrs,
            (
                "ai.result.text",
                "ai.toolCall.result",
                "ai.response.object",
                "ai.result.object",
                "ai.response.toolCalls",
                "ai.result.toolCalls",
            ),
        )
    if inp is None or out is None:
        # AI SDK >= 5 also writes gen_ai.* messages; use them for whatever is still missing.
        for fill_in, fill_out in (
            (unflatten(attrs, "gen_ai.prompt", flat), unflatten(attrs, "gen_ai.completion", flat)),
            _genai_messages(attrs),
        ):
            inp = fill_in if inp is None else inp
            out = fill_out if out is None else out
    return inp, out


def _event_attrs(events: list[dict], name: str) -> dict | None:
    for ev in events:
        if ev.get("name") == name:
            return ev.get("attributes") or {}
    return None


def _from_span_events(events: list[dict], scope_name: str) -> tuple[Any, Any] | None:
    # 5. gen_ai.client.inference.operation.details carries the semconv message attributes.
    details = _event_attrs(events, "gen_ai.client.inference.operation.details")
    if details is not None:
        inp, out = _genai_messages(details)
        if inp is not None or out is not None:
            return inp, out

    # 6. one event per message (older GenAI semconv)
    inputs = []
    outputs = []
    for ev in events:
        name = ev.get("name")
        role = _INPUT_EVENT_ROLES.get(name)  # type: ignore[arg-type]
        if role is not None:
            inputs.append({"role": role, **(ev.get("attributes") or {})})
        elif name == "gen_ai.choice":
            outputs.append(dict(ev.get("attributes") or {}))
    if inputs or outputs:
        return (inputs or None), (outputs[0] if len(outputs) == 1 else outputs or None)

    # 7. legacy Semantic Kernel events: the message lives in the event's own attributes.
    prompt = _event_attrs(events, "gen_ai.content.prompt")
    completion = _event_attrs(events, "gen_ai.content.completion")
    if prompt or completion:
        prompt = prompt or {}
        completion = completion or {}
        inner_in = extract_io(prompt, [], scope_name)[0] if prompt else None
        inner_out = extract_io(completion, [], scope_name)[1] if completion else None
        return (inner_in or prompt), (inner_out or completion)
    return None


def _logfire_events(raw: Any) -> tuple[Any, Any] | None:
    if isinstance(raw, str):
        raw = parse_json(raw)
    if not isinstance(raw, list):
        return None
    choice = None
    inputs = []
    for item in raw:
        if isinstance(item, dict) and item.get("event.name") == "gen_ai.choice":
            if choice is None:
                choice = item
        else:
            inputs.append(item)
    if choice is None and not inputs:
        return None
    return (inputs or None), choice


def _genai_messages(attrs: dict[str, Any]) -> tuple[Any, Any]:
    """15b: gen_ai.input.messages / gen_ai.output.messages, else tool call arguments/result."""
    inp = attrs.get("gen_ai.input.messages")
    out = attrs.get("gen_ai.output.messages")
    if inp:
        inp = _with_system_instructions(inp, attrs.get("gen_ai.system_instructions"))
    if inp or out:
        return inp, out
    inp = attrs.get("gen_ai.tool.call.arguments")
    out = attrs.get("gen_ai.tool.call.result")
    if inp or out:
        return inp, out
    return None, None


def _with_system_instructions(messages: Any, instructions: Any) -> Any:
    """Prepend gen_ai.system_instructions as system message(s) unless one is already there."""
    if instructions is None or instructions == "":
        return messages
    parsed = parse_json(messages) if isinstance(messages, str) else messages
    if not isinstance(parsed, list):
        return messages
    if any(isinstance(m, dict) and m.get("role") == "system" for m in parsed):
        return messages
    system = _system_messages(instructions)
    return system + parsed if system else messages


def _system_messages(instructions: Any) -> list[dict]:
    value = parse_json(instructions) if isinstance(instructions, str) else instructions
    if value is NOT_JSON:  # plain text instructions
        return [{"role": "system", "content": instructions}]
    if isinstance(value, str):
        return [{"role": "system", "content": value}] if value else []
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        return []
    # Whole messages ({role, parts}) are kept as they are so non-text parts survive.
    if value and all(isinstance(m, dict) and ("parts" in m or "role" in m) for m in value):
        return [{**m, "role": m.get("role") or "system"} for m in value]
    # Otherwise collect the text of every part into one system message.
    texts: list[str] = []
    for item in value:
        if isinstance(item, str):
            texts.append(item)
        elif isinstance(item, dict):
            if isinstance(item.get("content"), str):
                texts.append(item["content"])
            elif isinstance(item.get("parts"), list):
                texts.extend(
                    p["content"]
                    for p in item["parts"]
                    if isinstance(p, dict) and isinstance(p.get("content"), str)
                )
    return [{"role": "system", "content": "\n".join(texts)}] if texts else []


def collect_flat(attrs: dict[str, Any]) -> FlatKeys:
    """Flattened message keys grouped by prefix: {"gen_ai.prompt": [("0.role", "user"), ...]}."""
    flat: FlatKeys = {}
    for key, value in attrs.items():
        if key.startswith(("gen_ai.", "llm.")):
            for prefix in FLAT_PREFIXES:
                if key.startswith(prefix) and key[len(prefix) : len(prefix) + 1] == ".":
                    flat.setdefault(prefix, []).append((key[len(prefix) + 1 :], value))
                    break
    return flat


def unflatten(attrs: dict[str, Any], prefix: str, flat: FlatKeys) -> Any:
    """Rebuild `prefix.0.role`-style keys into nested lists/dicts (15a); None if there are none.

    A key equal to the prefix itself (older exporters put the whole JSON there) wins outright.
    """
    whole = attrs.get(prefix)
    if whole:
        return whole
    items = flat.get(prefix)
    if not items:
        return None
    fast = _index_field_list(items)
    if fast is not None:
        return fast
    paths = [(rest.split("."), value) for rest, value in items]
    root: Any = [] if any(_is_index(parts[0]) for parts, _ in paths) else {}
    budget = [0]
    for parts, value in paths:
        _set_path(root, parts, value, budget)
    return root


# "0.content" -> (0, "content"); None for any other shape. Memoised: the same few suffixes repeat
# on every LLM span, and splitting/validating them was the bulk of rebuilding message arrays.
_ROW_PATHS: dict[str, tuple[int, str] | None] = {}


def _row_path(rest: str) -> tuple[int, str] | None:
    found = _ROW_PATHS.get(rest, False)
    if found is not False:
        return found  # type: ignore[return-value]
    index, _, field = rest.partition(".")
    parsed = None
    if field and "." not in field and _is_index(index) and field not in _UNSAFE_KEYS:
        parsed = (int(index), field)
    if len(_ROW_PATHS) >= 20_000:
        _ROW_PATHS.clear()
    _ROW_PATHS[rest] = parsed
    return parsed


def _index_field_list(items: list[tuple[str, Any]]) -> list[dict[str, Any]] | None:
    """Fast path for `<index>.<field>` keys listed in index order (what exporters emit)."""
    result: list[dict[str, Any]] = []
    for rest, value in items:
        path = _row_path(rest)
        if path is None:
            return None
        idx, field = path
        if idx < len(result):
            result[idx][field] = value
        elif idx == len(result):
            result.append({field: value})
        else:
            return None  # a gap: let the general path place holes
    return result


def _is_index(segment: str) -> bool:
    return segment.isascii() and segment.isdigit()


def _set_path(node: Any, parts: list[str], value: Any, budget: list[int]) -> None:
    last = len(parts) - 1
    for i, seg in enumerate(parts):
        if isinstance(node, list):
            if not _is_index(seg):
                return  # a named key where the structure already is an array: drop it
            idx = int(seg)
            if idx >= len(node):
                grow = idx + 1 - len(node)
                if budget[0] + grow > MAX_ARRAY_SLOTS:
                    return
                budget[0] += grow
                node.extend([None] * grow)
            if i == last:
                node[idx] = value
                return
            child = node[idx]
            if not isinstance(child, (list, dict)):
                child = [] if _is_index(parts[i + 1]) else {}
                node[idx] = child
        else:
            if seg in _UNSAFE_KEYS:
                return
            if i == last:
                node[seg] = value
                return
            child = node.get(seg)
            if not isinstance(child, (list, dict)):
                child = [] if _is_index(parts[i + 1]) else {}
                node[seg] = child
        node = child
