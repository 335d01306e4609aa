"""OTLP spans -> Langfuse ingestion events (api-semantics 4.3-4.6).

Protobuf payloads come from the real opentelemetry-sdk and its OTLP encoder; mapping-only cases
build decoded spans directly (the shape decode_export returns).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from opentelemetry.trace import Status, StatusCode, Tracer

from lightfuse.ingest.otlp_decode import decode_export
from lightfuse.ingest.otlp_mapping import spans_to_events
from tests.unit.otlp_fixtures import (
    NOW_MS,
    PROTO,
    T0,
    TRACE_ID,
    assert_all_valid,
    map_one,
    map_spans,
    ms,
    obs_named,
    observations,
    openinference_trace,
    sdk_export,
    span_dict,
    to_events,
    traces,
)

# ------------------------------------------------------------------------------------------------
# Langfuse SDK attributes


def _langfuse_trace(tracer: Tracer) -> None:
    with tracer.start_as_current_span("handle-request") as root:
        root.set_attribute("langfuse.trace.name", "chat-request")
        root.set_attribute("user.id", "user-42")
        root.set_attribute("session.id", "session-7")
        root.set_attribute("langfuse.trace.tags", ["prod", "beta"])
        root.set_attribute("langfuse.trace.metadata.tenant", "acme")
        root.set_attribute("langfuse.trace.input", json.dumps({"question": "hi"}))
        root.set_attribute("langfuse.observation.input", "span-level input")
        root.set_attribute("langfuse.release", "r-1")
        with tracer.start_as_current_span("llm-call") as gen:
            gen.set_attribute("langfuse.observation.type", "generation")
            gen.set_attribute("langfuse.observation.model.name", "gpt-4o")
            gen.set_attribute(
                "langfuse.observation.model.parameters", json.dumps({"temperature": 0.2, "stop": ["x"]})
            )
            gen.set_attribute(
                "langfuse.observation.usage_details", json.dumps({"input": 120, "output": 30, "total": 150})
            )
            gen.set_attribute(
                "langfuse.observation.cost_details", json.dumps({"input": 0.001, "output": 0.002})
            )
            gen.set_attribute("langfuse.observation.prompt.name", "qa-prompt")
            gen.set_attribute("langfuse.observation.prompt.version", 3)
            gen.set_attribute(
                "langfuse.observation.completion_start_time", json.dumps("2025-06-15T15:06:40.5005Z")
            )
            gen.set_attribute("langfuse.observation.metadata", json.dumps({"a": 1}))
            gen.set_attribute("langfuse.observation.metadata.b", "two")
            gen.set_attribute("langfuse.observation.input", json.dumps([{"role": "user", "content": "hi"}]))
            gen.set_attribute("langfuse.observation.output", "hello!")
            gen.set_attribute("langfuse.observation.level", "warning")
            gen.set_attribute("langfuse.observation.status_message", "slow")
            gen.set_attribute("langfuse.environment", "Langfuse-Staging")


def test_langfuse_sdk_generation_and_full_trace() -> None:
    body = sdk_export(
        _langfuse_trace, scope="langfuse-sdk", resource={"service.name": "svc", "service.version": "9.9"}
    )
    events = to_events(body)
    assert_all_valid(events)

    gen = obs_named(events, "llm-call")
    root = obs_named(events, "handle-request")
    assert gen["type"] == "generation-create"
    assert root["type"] == "span-create"
    assert gen["timestamp"] == NOW_MS
    g = gen["body"]
    assert g["traceId"] == root["body"]["traceId"]
    assert g["parentObservationId"] == root["body"]["id"]
    assert "parentObservationId" not in root["body"]
    assert g["model"] == "gpt-4o"
    assert g["modelParameters"] == {"temperature": 0.2, "stop": '["x"]'}
    assert g["usageDetails"] == {"input": 120, "output": 30, "total": 150}
    assert g["costDetails"] == {"input": 0.001, "output": 0.002}
    assert (g["promptName"], g["promptVersion"]) == ("qa-prompt", 3)
    assert g["completionStartTime"] == ms("2025-06-15T15:06:40.500Z")
    assert g["input"] == json.dumps([{"role": "user", "content": "hi"}])
    assert g["output"] == "hello!"
    assert g["level"] == "WARNING"
    assert g["statusMessage"] == "slow"
    assert g["environment"] == "staging"  # langfuse- prefix stripped, lower-cased
    assert root["body"]["environment"] == "default"
    assert g["version"] == "9.9"  # resource service.version
    # Langfuse SDK spans: no attribute copy, but resource and scope are kept.
    assert g["metadata"]["a"] == 1 and g["metadata"]["b"] == "two"
    assert "attributes" not in g["metadata"]
    assert g["metadata"]["resourceAttributes"]["service.name"] == "svc"
    assert g["metadata"]["scope"] == {"name": "langfuse-sdk", "version": "1.0.0", "attributes": {}}

    [trace] = traces(events)  # the child's shallow event is dropped: the root's full one exists
    t = trace["body"]
    assert trace["timestamp"] == t["timestamp"] == root["body"]["startTime"]
    assert t["id"] == g["traceId"]
    assert t["name"] == "chat-request"
    assert t["userId"] == "user-42" and t["sessionId"] == "session-7"
    assert t["tags"] == ["prod", "beta"]
    assert t["release"] == "r-1" and t["version"] == "9.9"
    assert t["metadata"]["tenant"] == "acme"
    assert t["input"] == json.dumps({"question": "hi"})  # trace input wins over the span's own input
    assert root["body"]["input"] == "span-level input"
    assert "public" not in t  # absent stays absent


def test_python_sdk_3_3_generation_quirk() -> None:
    attrs = {"langfuse.observation.type": "span", "langfuse.observation.model.name": "gpt-4o"}
    for version, expected in (("3.3.0", "generation-create"), ("3.4.0", "span-create")):
        rs = [
            {
                "resource": {"attributes": {"telemetry.sdk.language": "python"}},
                "scopeSpans": [
                    {
                        "scope": {"name": "langfuse-sdk", "version": version, "attributes": {}},
                        "spans": [span_dict(attrs)],
                    }
                ],
            }
        ]
        assert observations(spans_to_events(rs, NOW_MS))[0]["type"] == expected


# ------------------------------------------------------------------------------------------------
# OpenTelemetry GenAI semantic conventions


def _genai_chat(tracer: Tracer) -> None:
    with tracer.start_as_current_span("agent") as root:
        with tracer.start_as_current_span("chat gpt-4o") as span:
            span.set_attribute("gen_ai.operation.name", "chat")
            span.set_attribute("gen_ai.system", "openai")
            span.set_attribute("gen_ai.request.model", "gpt-4o")
            span.set_attribute("gen_ai.response.model", "gpt-4o-2024-08-06")
            span.set_attribute("gen_ai.request.temperature", 0.7)
            span.set_attribute("gen_ai.request.max_tokens", 256)
            span.set_attribute("gen_ai.request.stop_sequences", ["END"])
            span.set_attribute("gen_ai.usage.input_tokens", 1000)
            span.set_attribute("gen_ai.usage.output_tokens", 300)
            span.set_attribute("gen_ai.usage.cache_read.input_tokens", 600)
            span.set_attribute("gen_ai.usage.reasoning_tokens", 200)
            span.set_attribute("gen_ai.usage.cost", 0.0042)
            span.set_attribute(
                "gen_ai.system_instructions", json.dumps([{"type": "text", "content": "Be brief."}])
            )
            span.set_attribute(
                "gen_ai.input.messages",
                json.dumps([{"role": "user", "parts": [{"type": "text", "content": "hi"}]}]),
            )
            span.set_attribute(
                "gen_ai.output.messages",
                json.dumps([{"role": "assistant", "parts": [{"type": "text", "content": "hello"}]}]),
            )
        root.set_attribute("gen_ai.conversation.id", "conv-1")


def test_genai_semconv_generation() -> None:
    events = to_events(sdk_export(_genai_chat))
    assert_all_valid(events)
    gen = obs_named(events, "chat gpt-4o")
    assert gen["type"] == "generation-create"
    b = gen["body"]
    assert b["model"] == "gpt-4o-2024-08-06"  # response model beats request model
    assert b["modelParameters"] == {"temperature": 0.7, "max_tokens": 256, "stop_sequences": '["END"]'}
    # cached and reasoning tokens get their own keys and are removed from input/output
    assert b["usageDetails"] == {
        "input": 400,
        "output": 100,
        "input_cached_tokens": 600,
        "output_reasoning_tokens": 200,
    }
    assert b["costDetails"] == {"total": 0.0042}
    assert b["input"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "parts": [{"type": "text", "content": "hi"}]},
    ]
    assert b["output"] == json.dumps([{"role": "assistant", "parts": [{"type": "text", "content": "hello"}]}])
    # Non-Langfuse spans keep a string-valued copy of their non-IO attributes.
    attrs = b["metadata"]["attributes"]
    assert attrs["gen_ai.usage.input_tokens"] == "1000"
    assert attrs["gen_ai.request.temperature"] == "0.7"
    assert attrs["gen_ai.request.stop_sequences"] == '["END"]'
    assert "gen_ai.input.messages" not in attrs and "gen_ai.system_instructions" not in attrs
    [trace] = traces(events)
    assert trace["body"]["sessionId"] == "conv-1"


@pytest.mark.parametrize(
    ("operation", "expected"),
    [
        ("chat", "generation-create"),
        ("text_completion", "generation-create"),
        ("generate_content", "generation-create"),
        ("embeddings", "embedding-create"),
        ("invoke_agent", "agent-create"),
        ("execute_tool", "tool-create"),
        ("something_else", "span-create"),
    ],
)
def test_genai_operation_types(operation: str, expected: str) -> None:
    events = map_spans(span_dict({"gen_ai.operation.name": operation}))
    assert observations(events)[0]["type"] == expected


def test_genai_span_events_details_and_message_events() -> None:
    details = span_dict(
        {},
        spanId="1111111111111111",
        events=[
            {
                "name": "gen_ai.client.inference.operation.details",
                "timeUnixNano": T0,
                "attributes": {
                    "gen_ai.input.messages": '[{"role":"user","content":"q"}]',
                    "gen_ai.output.messages": '[{"role":"assistant","content":"a"}]',
                },
            }
        ],
    )
    per_message = span_dict(
        {},
        spanId="2222222222222222",
        events=[
            {"name": "gen_ai.system.message", "timeUnixNano": T0, "attributes": {"content": "sys"}},
            {"name": "gen_ai.user.message", "timeUnixNano": T0, "attributes": {"content": "q"}},
            {
                "name": "gen_ai.choice",
                "timeUnixNano": T0,
                "attributes": {"index": 0, "message": '{"content":"a"}'},
            },
        ],
    )
    by_id = {e["body"]["id"]: e["body"] for e in observations(map_spans(details, per_message))}
    assert by_id["1111111111111111"]["input"] == '[{"role":"user","content":"q"}]'
    assert by_id["1111111111111111"]["output"] == '[{"role":"assistant","content":"a"}]'
    assert by_id["2222222222222222"]["input"] == [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": "q"},
    ]
    assert by_id["2222222222222222"]["output"] == {"index": 0, "message": '{"content":"a"}'}


# ------------------------------------------------------------------------------------------------
# OpenInference


def testopeninference_trace_spans() -> None:
    events = to_events(sdk_export(openinference_trace, scope="openinference.instrumentation.langchain"))
    assert_all_valid(events)
    chain, llm, tool = (obs_named(events, n) for n in ("chain", "ChatOpenAI", "calculator"))
    assert (chain["type"], llm["type"], tool["type"]) == ("chain-create", "generation-create", "tool-create")
    assert (chain["body"]["input"], chain["body"]["output"]) == ("What is 2+2?", "4")
    assert (tool["body"]["input"], tool["body"]["output"]) == ('{"expr": "2+2"}', "4")
    b = llm["body"]
    assert b["model"] == "gpt-4o-mini"
    assert b["modelParameters"] == {"temperature": 0, "seed": None}
    assert b["usageDetails"] == {"input": 40, "output": 20, "total": 70, "input_cached_tokens": 10}
    # flattened llm.input_messages.<i>.message.<field> rebuilt into arrays
    assert b["input"] == [
        {"message": {"role": "system", "content": "You add numbers."}},
        {"message": {"role": "user", "content": "2+2?"}},
    ]
    assert b["output"] == [{"message": {"role": "assistant", "content": "4"}}]
    assert not any(k.startswith("llm.input_messages") for k in b["metadata"]["attributes"])
    assert tool["body"]["metadata"]["attributes"] == {
        "openinference.span.kind": "TOOL",
        "tool.name": "calculator",
    }


def testopeninference_trace_input_value_beats_flattened_messages() -> None:
    b = map_one({"input.value": "raw", "llm.input_messages.0.message.content": "x"})
    assert b["input"] == "raw"
    assert "output" not in b


# ------------------------------------------------------------------------------------------------
# status, level, resource, environment


def _error_span(tracer: Tracer) -> None:
    with tracer.start_as_current_span("root"):
        with tracer.start_as_current_span("fails") as span:
            span.set_status(Status(StatusCode.ERROR, "upstream timed out"))
        with tracer.start_as_current_span("explicit") as span:
            span.set_status(Status(StatusCode.ERROR, "ignored"))
            span.set_attribute("langfuse.observation.level", "DEBUG")
            span.set_attribute("langfuse.observation.status_message", "custom")


def test_error_status_maps_to_level_and_message() -> None:
    events = to_events(
        sdk_export(
            _error_span,
            resource={"service.name": "svc", "deployment.environment.name": "Production", "region": "eu"},
        )
    )
    fails, explicit, root = (obs_named(events, n)["body"] for n in ("fails", "explicit", "root"))
    assert (fails["level"], fails["statusMessage"]) == ("ERROR", "upstream timed out")
    assert (explicit["level"], explicit["statusMessage"]) == ("DEBUG", "custom")
    assert root["level"] == "DEFAULT" and "statusMessage" not in root
    for body in (fails, explicit, root):
        assert body["environment"] == "production"
        assert body["metadata"]["resourceAttributes"]["region"] == "eu"
        assert body["metadata"]["resourceAttributes"]["deployment.environment.name"] == "Production"
    [trace] = traces(events)
    assert trace["body"]["environment"] == "production"
    assert trace["body"]["metadata"]["resourceAttributes"]["service.name"] == "svc"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("info", "DEFAULT"),
        ("WARN", "WARNING"),
        ("fatal", "ERROR"),
        ("verbose", "DEBUG"),
        ("bogus", "DEFAULT"),
    ],
)
def test_level_aliases(raw: str, expected: str) -> None:
    assert map_one({"langfuse.observation.level": raw})["level"] == expected


def test_status_level_on_spans_with_mapped_attributes() -> None:
    # A model attribute sends the span through the full field mapping rather than the fast path.
    b = map_one({"gen_ai.request.model": "m"}, status={"code": 2, "message": "rate limited"})
    assert (b["level"], b["statusMessage"], b["model"]) == ("ERROR", "rate limited", "m")
    assert map_one({"gen_ai.request.model": "m"})["level"] == "DEFAULT"
    assert map_one({}, scope="livekit-agents", name="tts_node")["level"] == "DEBUG"
    assert map_one({}, scope="livekit-agents", name="tts_node", status={"code": 2})["level"] == "ERROR"


# ------------------------------------------------------------------------------------------------
# trace events (4.3)


def test_trace_event_variants() -> None:
    root = span_dict({"langfuse.trace.name": "t"}, spanId="a" * 16, parentSpanId=None, startTimeUnixNano=T0)
    partial = span_dict({"langfuse.user.id": "u", "langfuse.trace.public": True}, spanId="b" * 16)
    plain = span_dict({}, spanId="c" * 16)
    events = map_spans(plain, root, partial)
    kinds = {e["id"]: e["body"] for e in traces(events)}
    assert len(kinds) == 2  # shallow dropped next to full/partial
    full = next(b for b in kinds.values() if b.get("name") == "t")
    part = next(b for b in kinds.values() if b.get("userId") == "u")
    assert part["public"] is True and "name" not in part and "input" not in part
    assert "attributes" not in part["metadata"] and "attributes" in full["metadata"]
    assert len(observations(events)) == 3
    assert_all_valid(events)


def test_as_root_attribute_makes_a_full_trace() -> None:
    events = map_spans(span_dict({"langfuse.internal.as_root": "true", "input.value": "q"}))
    [trace] = traces(events)
    assert trace["body"]["name"] == "op" and trace["body"]["input"] == "q"


def test_one_shallow_trace_per_trace_when_root_is_elsewhere() -> None:
    later = span_dict({}, spanId="c" * 16, startTimeUnixNano=T0 + 5_000_000)
    earlier = span_dict({}, spanId="d" * 16, startTimeUnixNano=T0 + 1_000_000)
    other_trace = span_dict({}, traceId="f" * 32, spanId="e" * 16)
    events = map_spans(later, earlier, other_trace, resource={"deployment.environment": "dev"})
    shallow = traces(events)
    assert sorted(e["body"]["id"] for e in shallow) == sorted([TRACE_ID, "f" * 32])
    mine = next(e for e in shallow if e["body"]["id"] == TRACE_ID)
    assert mine["body"] == {"id": TRACE_ID, "timestamp": ms("2025-06-15T15:06:40.001Z"), "environment": "dev"}
    assert mine["timestamp"] == ms("2025-06-15T15:06:40.001Z")

    seen = {TRACE_ID}
    claimed: list[str] = []

    def claim(trace_id: str) -> bool:
        claimed.append(trace_id)
        return trace_id not in seen

    events = map_spans(later, earlier, other_trace, claim_trace=claim)
    assert [e["body"]["id"] for e in traces(events)] == ["f" * 32]
    assert sorted(claimed) == sorted([TRACE_ID, "f" * 32])


def test_event_ids_are_stable_across_reexports_and_unique_within() -> None:
    raw = sdk_export(openinference_trace)
    first, second = to_events(raw), to_events(raw)
    assert [e["id"] for e in first] == [e["id"] for e in second]
    assert len({e["id"] for e in first}) == len(first)
    # A span exported twice in one request is one observation, not two.
    [rs] = decode_export(raw, PROTO, None)
    rs["scopeSpans"][0]["spans"].append(rs["scopeSpans"][0]["spans"][0])
    assert len(observations(spans_to_events([rs], NOW_MS))) == 3


def test_times_are_floored_and_missing_times_filled() -> None:
    b = map_one({}, startTimeUnixNano=T0 + 1_999_999, endTimeUnixNano=None)
    assert b["startTime"] == b["endTime"] == ms("2025-06-15T15:06:40.001Z")
    b = map_one({}, startTimeUnixNano=None, endTimeUnixNano=T0 + 7_000_000)
    assert b["startTime"] == b["endTime"] == ms("2025-06-15T15:06:40.007Z")
    b = map_one({}, startTimeUnixNano=None, endTimeUnixNano=None)
    assert b["startTime"] == b["endTime"] == NOW_MS


# ------------------------------------------------------------------------------------------------
# IO extraction rules (4.4)


@pytest.mark.parametrize(
    ("scope", "attrs", "expected_in", "expected_out"),
    [
        # 1 Langfuse
        ("x", {"langfuse.observation.input": "i", "input.value": "other"}, "i", None),
        # 3 Vercel AI SDK
        ("ai", {"ai.prompt.messages": "[m]", "ai.response.text": "t"}, "[m]", "t"),
        (
            "ai",
            {"ai.prompt": "p", "ai.response.text": "t", "ai.response.toolCalls": "[c]"},
            "p",
            {"role": "assistant", "content": "t", "tool_calls": "[c]"},
        ),
        ("ai", {"ai.toolCall.args": "{}", "gen_ai.output.messages": "[o]"}, "{}", "[o]"),
        # 4 Flue (JSON-parsed)
        (
            "@flue/opentelemetry",
            {"flue.tool.arguments": '{"a":1}', "flue.tool.result": "plain"},
            {"a": 1},
            "plain",
        ),
        # 8 Google ADK: "{}" requests fall back to tool args
        (
            "x",
            {"gcp.vertex.agent.llm_request": "{}", "gcp.vertex.agent.tool_call_args": "args"},
            "args",
            None,
        ),
        # 9 Logfire
        ("x", {"prompt": "p", "all_messages_events": "e"}, "p", "e"),
        # 10 LiveKit
        ("x", {"lk.user_transcript": "hey", "lk.response.text": "yo"}, "hey", "yo"),
        # 11 Logfire events
        (
            "x",
            {"events": json.dumps([{"event.name": "gen_ai.user.message"}, {"event.name": "gen_ai.choice"}])},
            [{"event.name": "gen_ai.user.message"}],
            {"event.name": "gen_ai.choice"},
        ),
        # 12 MLflow
        ("x", {"mlflow.spanInputs": '{"q":1}', "mlflow.spanOutputs": "r"}, '{"q":1}', "r"),
        # 13 TraceLoop entities
        ("x", {"traceloop.entity.input": "ti", "traceloop.entity.output": "to"}, "ti", "to"),
        # 14 plain input/output, then pydantic-ai, then tool args
        ("x", {"input": "pi", "output": "po"}, "pi", "po"),
        ("pydantic-ai", {"pydantic_ai.all_messages": "[]", "final_result": "done"}, "[]", "done"),
        ("x", {"tool_arguments": "ta", "tool_response": "tr"}, "ta", "tr"),
        # 15a TraceLoop flattened
        (
            "x",
            {
                "gen_ai.prompt.0.role": "user",
                "gen_ai.prompt.0.content": "q",
                "gen_ai.prompt.1.content": "q2",
                "gen_ai.completion.0.content": "a",
            },
            [{"role": "user", "content": "q"}, {"content": "q2"}],
            [{"content": "a"}],
        ),
        ("x", {"gen_ai.prompt": '[{"role":"user"}]'}, '[{"role":"user"}]', None),
        # 15b tool call
        ("x", {"gen_ai.tool.call.arguments": "{}", "gen_ai.tool.call.result": "42"}, "{}", "42"),
        # nothing
        ("x", {"unrelated": "v"}, None, None),
    ],
)
def test_io_rules(scope: str, attrs: dict, expected_in: Any, expected_out: Any) -> None:
    body = map_one(attrs, scope=scope)
    assert body.get("input") == expected_in
    assert body.get("output") == expected_out
    for key in ("gen_ai.prompt.0.role", "input", "prompt", "events", "mlflow.spanInputs", "gen_ai.prompt"):
        assert key not in body["metadata"].get("attributes", {})


def test_flattened_keys_with_nesting_holes_and_hostile_indices() -> None:
    b = map_one(
        {
            "gen_ai.prompt.2.content": "third",
            "gen_ai.prompt.0.tool_calls.1.name": "f",
            "gen_ai.prompt.0.__proto__": "x",
            "gen_ai.completion.99999999.content": "huge",
        }
    )
    assert b["input"] == [{"tool_calls": [None, {"name": "f"}]}, None, {"content": "third"}]
    assert b["output"] == []  # an index beyond the array budget is dropped, not allocated


def test_system_instructions_not_duplicated() -> None:
    messages = json.dumps([{"role": "system", "content": "s"}, {"role": "user", "content": "u"}])
    b = map_one({"gen_ai.input.messages": messages, "gen_ai.system_instructions": "other"})
    assert b["input"] == messages
    b = map_one({"gen_ai.input.messages": '[{"role":"user"}]', "gen_ai.system_instructions": "plain text"})
    assert b["input"] == [{"role": "system", "content": "plain text"}, {"role": "user"}]


# ------------------------------------------------------------------------------------------------
# field mappings (4.5) and observation types (4.6)


@pytest.mark.parametrize(
    ("attrs", "expected"),
    [
        ({"langfuse.trace.tags": '["a", "b"]'}, ["a", "b"]),
        ({"langfuse.tags": "a, b ,c"}, ["a", "b", "c"]),
        ({"ai.telemetry.metadata.tags": ["x", 1]}, ["x", "1"]),
        ({"tag.tags": "solo"}, ["solo"]),
    ],
)
def test_tags(attrs: dict, expected: list[str]) -> None:
    [trace] = traces(map_spans(span_dict(attrs, parentSpanId=None)))
    assert trace["body"]["tags"] == expected


def test_user_session_public_precedence() -> None:
    attrs = {
        "user.id": "plain",
        "langfuse.user.id": "lf",
        "ai.telemetry.metadata.sessionId": "vercel",
        "langfuse.public": "true",
        "ai.telemetry.metadata.userId": "ignored",
    }
    [trace] = traces(map_spans(span_dict(attrs)))
    assert trace["body"]["userId"] == "lf"
    assert trace["body"]["sessionId"] == "vercel"
    assert trace["body"]["public"] is True


def test_metadata_sources() -> None:
    b = map_one(
        {
            "langfuse.observation.metadata": '{"a": 1, "b": 1}',
            "langfuse.observation.metadata.b": "2",
            "ai.telemetry.metadata.c": "3",
            "ai.telemetry.metadata.userId": "not metadata",
            "langfuse.metadata.d": "4",
        }
    )
    md = b["metadata"]
    assert (md["a"], md["b"], md["c"], md["d"]) == (1, "2", "3", "4")
    assert "userId" not in md
    assert md["attributes"] == {"langfuse.metadata.d": "4"}


def test_names() -> None:
    assert map_one({"gen_ai.tool.name": "search"})["name"] == "search"
    assert map_one({"ai.operationId": "ai.generateText", "ai.telemetry.functionId": "fn"})["name"] == (
        "fn:ai.generateText"
    )
    assert map_one({"logfire.msg": "running agent"})["name"] == "running agent"


def test_vercel_ai_sdk_generation_and_agent_spans() -> None:
    provider_metadata = json.dumps(
        {
            "anthropic": {
                "usage": {
                    "cache_creation_input_tokens": 100,
                    "cache_read_input_tokens": 500,
                    "cache_creation": {"ephemeral_5m_input_tokens": 40, "ephemeral_1h_input_tokens": 60},
                }
            }
        }
    )
    gen = map_one(
        {
            "operation.name": "ai.streamText.doStream my-fn",
            "ai.model.id": "claude-sonnet-4",
            "gen_ai.usage.input_tokens": 1000,
            "gen_ai.usage.output_tokens": 50,
            "ai.usage.tokens": 1050,
            "ai.response.providerMetadata": provider_metadata,
            "ai.response.msToFirstChunk": 250.2,
            "gen_ai.request.temperature": 0.5,
            "ai.telemetry.metadata.langfusePrompt": '{"name": "p", "version": 4}',
        },
        scope="ai",
    )
    assert gen["model"] == "claude-sonnet-4"
    assert gen["usageDetails"] == {
        "input": 400,
        "output": 50,
        "total": 1050,
        "input_cached_tokens": 500,
        "input_cache_creation": 0,
        "input_cache_creation_5m": 40,
        "input_cache_creation_1h": 60,
    }
    assert gen["completionStartTime"] == ms("2025-06-15T15:06:40.251Z")  # start + ceil(250.2 ms)
    assert gen["modelParameters"]["temperature"] == "0.5" and gen["modelParameters"]["maxSteps"] is None
    assert (gen["promptName"], gen["promptVersion"]) == ("p", 4)

    agent = map_one(
        {"gen_ai.operation.name": "invoke_agent", "ai.model.id": "m", "gen_ai.usage.input_tokens": 9},
        scope="ai",
    )
    assert not {"model", "usageDetails", "costDetails", "modelParameters"} & agent.keys()


@pytest.mark.parametrize(
    ("scope", "attrs", "name", "expected"),
    [
        ("x", {"langfuse.observation.type": "agent", "openinference.span.kind": "LLM"}, "s", "agent-create"),
        (
            "x",
            {"langfuse.observation.type": "nonsense", "openinference.span.kind": "RETRIEVER"},
            "s",
            "retriever-create",
        ),
        ("x", {"openinference.span.kind": "EMBEDDING"}, "s", "embedding-create"),
        ("x", {"openinference.span.kind": "GUARDRAIL"}, "s", "guardrail-create"),
        ("x", {"openinference.span.kind": "EVALUATOR"}, "s", "evaluator-create"),
        ("x", {"langfuse.observation.type": "event"}, "s", "event-create"),
        ("x", {"genkit:metadata:subtype": "embedder"}, "s", "embedding-create"),
        ("x", {"operation.name": "ai.embedMany.doEmbed", "ai.model.id": "e"}, "s", "embedding-create"),
        ("x", {"ai.operationId": "ai.toolCall"}, "s", "tool-create"),
        ("x", {"ai.operationId": "ai.generateText"}, "s", "span-create"),
        ("x", {"gen_ai.tool.call.id": "c1"}, "s", "tool-create"),
        ("x", {"flue.task.id": "t"}, "s", "agent-create"),
        ("livekit-agents", {}, "function_tool", "tool-create"),
        ("livekit-agents", {}, "agent_turn", "agent-create"),
        ("x", {"model": "llama3"}, "s", "generation-create"),
        ("x", {"gen_ai.request.model": ""}, "s", "span-create"),
        ("x", {}, "s", "span-create"),
    ],
)
def test_observation_types(scope: str, attrs: dict, name: str, expected: str) -> None:
    events = map_spans(span_dict(attrs, name=name), scope=scope)
    assert observations(events)[0]["type"] == expected


def test_prompt_link_only_for_generations_and_only_complete() -> None:
    link = {"langfuse.observation.prompt.name": "p", "langfuse.observation.prompt.version": "2"}
    gen = map_one({**link, "langfuse.observation.type": "generation"})
    assert (gen["promptName"], gen["promptVersion"]) == ("p", 2)
    span = map_one(link)
    assert "promptName" not in span
    half = map_one({"langfuse.observation.prompt.name": "p", "langfuse.observation.type": "generation"})
    assert "promptName" not in half and "promptVersion" not in half


def test_usage_keeps_only_non_negative_integer_counts() -> None:
    b = map_one(
        {
            "gen_ai.usage.input_tokens": "12",
            "gen_ai.usage.output_tokens": -3,
            "gen_ai.usage.details.audio": 1.5,
            "llm.token_count.completion_details.reasoning": 0,
            "gen_ai.usage.weird": "n/a",
        }
    )
    assert b["usageDetails"] == {"input": 12, "output_reasoning_tokens": 0}
    assert "usageDetails" not in map_one({"gen_ai.usage.weird": "n/a"})


def test_completion_start_time_formats() -> None:
    iso = map_one({"langfuse.observation.completion_start_time": "2025-06-15T17:06:41.123456789+02:00"})
    assert iso["completionStartTime"] == ms("2025-06-15T15:06:41.123Z")
    assert "completionStartTime" not in map_one({"langfuse.observation.completion_start_time": "yesterday"})
