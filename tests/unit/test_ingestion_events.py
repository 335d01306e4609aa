"""Validation of batch-ingestion events and usage/cost normalisation (api-semantics §0.3, §2.1, §2.2)."""

from __future__ import annotations

from dataclasses import FrozenInstanceError
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lightfuse.services.ingestion.events import (
    EventError,
    ValidEvent,
    normalise_environment,
    parse_iso_timestamp,
    validate_event,
)
from lightfuse.services.ingestion.usage import normalise_cost, normalise_usage

TS = "2024-05-01T12:00:00.000Z"
TS_MS = 1714564800000
SCOPE_MSG = (
    "Provide exactly one of the following: traceId (with optional observationId), sessionId or datasetRunId. "
    "ObservationId requires traceId."
)


def event(type_: str, body: Any, *, id_: Any = "ev-1", timestamp: Any = TS) -> dict[str, Any]:
    raw: dict[str, Any] = {"type": type_, "body": body}
    if id_ is not None:
        raw["id"] = id_
    if timestamp is not None:
        raw["timestamp"] = timestamp
    return raw


def ok(raw: Any, access: str = "project") -> ValidEvent:
    result = validate_event(raw, access)
    assert isinstance(result, ValidEvent), result
    return result


def err(raw: Any, access: str = "project") -> EventError:
    result = validate_event(raw, access)
    assert isinstance(result, EventError), result
    return result


# ---------------------------------------------------------------------------------------------------------
# Timestamps and environments
# ---------------------------------------------------------------------------------------------------------


def test_epoch_ms_times_validate_like_iso_times() -> None:
    """Mapped (OTLP) events carry epoch-ms times; the result equals the ISO form's, field for field."""
    iso_body = {"id": "o1", "startTime": TS, "endTime": "2024-05-01T12:00:01.500Z", "completionStartTime": TS}
    ms_body = {"id": "o1", "startTime": TS_MS, "endTime": TS_MS + 1500, "completionStartTime": TS_MS}
    from_iso = ok(event("generation-create", iso_body))
    from_ms = validate_event(
        event("generation-create", ms_body, timestamp=TS_MS), "project", epoch_ms_times=True
    )
    assert from_ms == from_iso
    # the range is what an ISO timestamp can express: years 1 to 9999
    lowest, highest = (
        parse_iso_timestamp("0001-01-01T00:00:00Z"),
        parse_iso_timestamp("9999-12-31T23:59:59.999Z"),
    )
    for fine in (lowest, highest, -1, 0):
        body = {"id": "o1", "startTime": fine}
        assert isinstance(
            validate_event(event("span-create", body, timestamp=fine), "project", epoch_ms_times=True),
            ValidEvent,
        )


@pytest.mark.parametrize("bad", [TS, 1.5, True, None, 253402300800000, -62135596800001])
def test_epoch_ms_times_reject_anything_else(bad: Any) -> None:
    body_result = validate_event(
        event("span-create", {"id": "o1", "startTime": bad}, timestamp=TS_MS), "project", epoch_ms_times=True
    )
    if bad is None:  # every body field is nullable
        assert isinstance(body_result, ValidEvent)
    else:
        assert isinstance(body_result, EventError) and "body.startTime" in body_result.error
    envelope = validate_event(
        event("span-create", {"id": "o1"}, timestamp=bad), "project", epoch_ms_times=True
    )
    assert isinstance(envelope, EventError) and "timestamp" in envelope.error
    # and the batch API keeps taking ISO text only
    assert isinstance(
        validate_event(event("span-create", {"id": "o1"}, timestamp=TS_MS), "project"), EventError
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-05-01T12:00:00Z", TS_MS),
        ("2024-05-01T12:00:00.000Z", TS_MS),
        ("2024-05-01T12:00:00.123456789Z", TS_MS + 123),  # any precision, floored to ms
        ("2024-05-01T12:00:00.9999+00:00", TS_MS + 999),
        ("2024-05-01T14:00:00+02:00", TS_MS),
        ("2024-05-01T06:30:00-0530", TS_MS),
        ("2024-05-01T13:00:00+01", TS_MS),
        ("2024-05-01T12:00Z", TS_MS),
        ("2024-05-01 12:00:00z", TS_MS),
        ("1970-01-01T00:00:00Z", 0),
        ("1969-12-31T23:59:59.999Z", -1),
    ],
)
def test_parse_iso_timestamp(value: str, expected: int) -> None:
    assert parse_iso_timestamp(value) == expected


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("2024-05-01T12:00:00", "timezone"),
        ("2024-05-01T12:00:00.123", "timezone"),
        ("2024-05-01", "invalid"),
        ("2024-13-01T00:00:00Z", "invalid"),
        ("2024-02-30T00:00:00Z", "invalid"),
        ("2024-05-01T24:00:00Z", "invalid"),
        ("2024-05-01T12:00:00+25:00", "invalid"),
        ("yesterday", "invalid"),
        ("", "invalid"),
        (1714564800000, "string"),
        (None, "string"),
    ],
)
def test_parse_iso_timestamp_rejects(value: Any, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        parse_iso_timestamp(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("production", "production"),
        ("Production", "production"),
        ("langfuse-prod", "prod"),
        ("langfuse_prod", "prod"),
        ("langfuseprod", "prod"),
        ("Langfuse-langfuse_LANGFUSEstaging", "staging"),
        ("langfuse", "default"),
        ("a" * 50, "a" * 40),
        ("my env", "default"),
        ("dev/1", "default"),
        ("", "default"),
        (None, "default"),
        (42, "default"),
        ("stage_1-eu", "stage_1-eu"),
    ],
)
def test_normalise_environment(value: Any, expected: str) -> None:
    assert normalise_environment(value) == expected


# ---------------------------------------------------------------------------------------------------------
# Envelope
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "error_id", "fragment"),
    [
        ("not an event", "unknown", "event"),
        ([1, 2], "unknown", "event"),
        (event("trace-create", {}, id_=None), "unknown", "id"),
        (event("trace-create", {}, id_=""), "unknown", "id"),
        (event("trace-create", {}, id_=5), "unknown", "id"),
        (event("trace-create", {}, id_="x" * 801), "x" * 801, "id"),
        (event("trace-create", {}, id_="a\rb"), "a\rb", "carriage"),
        (event("trace-create", {}, timestamp=None), "ev-1", "timestamp: required"),
        (
            event("trace-create", {}, timestamp="2024-05-01T12:00:00"),
            "ev-1",
            "timestamp: timestamp must include",
        ),
        (event("trace-create", None), "ev-1", "body"),
        (event("trace-create", [1]), "ev-1", "body"),
        (event("span-delete", {"id": "s"}), "ev-1", "unknown event type"),
        ({"id": "ev-1", "timestamp": TS, "body": {}}, "ev-1", "type"),
    ],
)
def test_envelope_errors(raw: Any, error_id: str, fragment: str) -> None:
    e = err(raw)
    assert (e.id, e.status, e.message) == (error_id, 400, "Invalid request data")
    assert fragment in e.error


def test_envelope_id_limits_accepted() -> None:
    assert ok(event("trace-create", {"id": "t"}, id_="x" * 800)).id == "x" * 800


def test_dataset_run_item_create_is_internal_only() -> None:
    e = err(event("dataset-run-item-create", {"runName": "r", "datasetItemId": "d"}))
    assert (e.status, e.message, e.error) == (
        400,
        "Invalid request data",
        "Dataset run item creation is only allowed for internal usage",
    )


def test_sdk_log_is_reported_nowhere() -> None:
    assert validate_event(event("sdk-log", {"log": {"msg": "hi"}}), "project") is None
    assert validate_event(event("sdk-log", {"log": "x"}), "scores") is None


@pytest.mark.parametrize("type_", ["trace-create", "span-create", "generation-update", "agent-create"])
def test_scores_access_level_denies_non_score_events(type_: str) -> None:
    e = err(event(type_, {"id": "x"}), access="scores")
    assert (e.id, e.status, e.message, e.error) == (
        "ev-1",
        401,
        "Authentication error",
        "Access Scope Denied",
    )


def test_scores_access_level_allows_scores() -> None:
    v = ok(event("score-create", {"id": "s", "name": "q", "value": 1, "traceId": "t"}), access="scores")
    assert v.kind == "score"


def test_schema_is_checked_before_scope() -> None:
    e = err(event("trace-create", {"id": 5}), access="scores")
    assert e.status == 400


# ---------------------------------------------------------------------------------------------------------
# Trace bodies
# ---------------------------------------------------------------------------------------------------------


def test_trace_create_valid_event() -> None:
    body = {
        "id": "t1",
        "timestamp": "2024-05-01T14:00:00+02:00",
        "name": "chat",
        "userId": "u",
        "sessionId": "s",
        "input": {"q": 1},
        "output": None,
        "metadata": {"k": [1, 2]},
        "release": "r",
        "version": "v",
        "public": True,
        "tags": ["b", "a"],
        "environment": "Langfuse-Prod",
        "externalId": "ignored",
        "somethingElse": 1,
    }
    v = ok(event("trace-create", body))
    assert (v.id, v.type, v.timestamp, v.kind, v.entity_id, v.observation_type) == (
        "ev-1",
        "trace-create",
        TS_MS,
        "trace",
        "t1",
        None,
    )
    assert v.body == {
        "id": "t1",
        "timestamp": TS_MS,
        "name": "chat",
        "userId": "u",
        "sessionId": "s",
        "input": {"q": 1},
        "output": None,
        "metadata": {"k": [1, 2]},
        "release": "r",
        "version": "v",
        "public": True,
        "tags": ["b", "a"],
        "environment": "prod",
    }


def test_valid_event_is_a_frozen_value() -> None:
    v = ok(event("span-create", {"id": "o1"}))
    assert v == ValidEvent("ev-1", "span-create", TS_MS, "observation", "o1", v.body, "SPAN")
    with pytest.raises(FrozenInstanceError):
        v.kind = "trace"  # type: ignore[misc]


def test_trace_without_id_is_valid_but_has_no_entity() -> None:
    v = ok(event("trace-create", {"name": "x"}))
    assert v.entity_id is None
    assert v.body == {"name": "x", "environment": "default"}


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"id": ""}, "body.id"),
        ({"id": "t", "name": "n" * 1001}, "body.name"),
        ({"id": "t", "name": 3}, "body.name"),
        ({"id": "t", "public": "yes"}, "body.public"),
        ({"id": "t", "tags": ["a", 1]}, "body.tags"),
        ({"id": "t", "tags": "a"}, "body.tags"),
        (
            {"id": "t", "timestamp": "2024-05-01T12:00:00"},
            "body.timestamp: timestamp must include a timezone",
        ),
        ({"id": "t", "userId": 12}, "body.userId"),
    ],
)
def test_trace_body_errors(body: dict[str, Any], fragment: str) -> None:
    assert fragment in err(event("trace-create", body)).error


def test_trace_name_limit_accepted() -> None:
    assert ok(event("trace-create", {"id": "t", "name": "n" * 1000})).body["name"] == "n" * 1000


# ---------------------------------------------------------------------------------------------------------
# Observation bodies
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("type_", "observation_type"),
    [
        ("span-create", "SPAN"),
        ("span-update", "SPAN"),
        ("generation-create", "GENERATION"),
        ("generation-update", "GENERATION"),
        ("event-create", "EVENT"),
        ("agent-create", "AGENT"),
        ("tool-create", "TOOL"),
        ("chain-create", "CHAIN"),
        ("retriever-create", "RETRIEVER"),
        ("evaluator-create", "EVALUATOR"),
        ("embedding-create", "EMBEDDING"),
        ("guardrail-create", "GUARDRAIL"),
    ],
)
def test_observation_types_and_required_id(type_: str, observation_type: str) -> None:
    v = ok(event(type_, {"id": "o1", "traceId": "t1"}))
    assert (v.kind, v.observation_type, v.entity_id) == ("observation", observation_type, "o1")
    assert v.body == {"id": "o1", "traceId": "t1", "environment": "default"}
    e = err(event(type_, {"traceId": "t1"}))
    assert e.error == "body.id: required"
    assert err(event(type_, {"id": None})).error == "body.id: required"


@pytest.mark.parametrize("type_", ["agent-update", "tool-update", "event-update"])
def test_no_update_variants_for_newer_types(type_: str) -> None:
    assert "unknown event type" in err(event(type_, {"id": "o"})).error


def test_generation_body_fields() -> None:
    body = {
        "id": "g",
        "traceId": "t",
        "name": "llm",
        "startTime": "2024-05-01T12:00:00Z",
        "endTime": "2024-05-01T12:00:01.5Z",
        "completionStartTime": "2024-05-01T12:00:00.250Z",
        "model": "gpt-4o",
        "modelParameters": {
            "temperature": 0.2,
            "stop": ["\n"],
            "fmt": {"type": "json"},
            "n": None,
            "s": True,
        },
        "usage": {"input": 3, "output": 4, "unit": "TOKENS", "inputCost": 0.1, "junk": 1},
        "usageDetails": {"input": 3},
        "costDetails": {"input": 0.5},
        "promptName": "p",
        "promptVersion": 2,
        "level": "WARNING",
        "statusMessage": "slow",
        "parentObservationId": "parent",
        "version": "1",
        "environment": "staging",
    }
    v = ok(event("generation-create", body))
    assert v.body["startTime"] == TS_MS
    assert v.body["endTime"] == TS_MS + 1500
    assert v.body["completionStartTime"] == TS_MS + 250
    assert v.body["usage"] == {"input": 3, "output": 4, "unit": "TOKENS", "inputCost": 0.1}
    assert v.body["environment"] == "staging"
    assert v.body["promptVersion"] == 2
    assert v.body["modelParameters"] == body["modelParameters"]


def test_event_body_drops_span_only_keys() -> None:
    v = ok(event("event-create", {"id": "e", "endTime": TS, "model": "m"}))
    assert v.body == {"id": "e", "environment": "default"}


@pytest.mark.parametrize(
    ("type_", "body", "fragment"),
    [
        ("span-create", {"id": "s", "level": "INFO"}, "body.level"),
        (
            "span-create",
            {"id": "s", "startTime": "2024-05-01T12:00:00"},
            "body.startTime: timestamp must include a timezone",
        ),
        ("span-update", {"id": "s", "endTime": "soon"}, "body.endTime"),
        ("span-create", {"id": "s", "traceId": ""}, "body.traceId"),
        ("generation-create", {"id": "g", "promptName": "p"}, "promptName and promptVersion"),
        ("generation-create", {"id": "g", "promptVersion": 1}, "promptName and promptVersion"),
        ("generation-create", {"id": "g", "promptName": "p", "promptVersion": "1"}, "body.promptVersion"),
        ("generation-create", {"id": "g", "promptName": "p", "promptVersion": True}, "body.promptVersion"),
        (
            "generation-create",
            {"id": "g", "modelParameters": {"tools": [{"a": 1}]}},
            "body.modelParameters.tools",
        ),
        ("generation-create", {"id": "g", "modelParameters": {"x": {"a": 1}}}, "body.modelParameters.x"),
        ("generation-create", {"id": "g", "modelParameters": []}, "body.modelParameters"),
        ("generation-create", {"id": "g", "usage": {"unit": "tokens"}}, "body.usage.unit"),
        ("generation-create", {"id": "g", "usage": {"input": 1.5}}, "body.usage.input"),
        ("generation-create", {"id": "g", "usage": {"input": 10**30}}, "body.usage.input"),
        ("generation-create", {"id": "g", "usage": {"totalCost": "1"}}, "body.usage.totalCost"),
        ("generation-create", {"id": "g", "usage": 5}, "body.usage"),
        ("generation-create", {"id": "g", "usageDetails": [1]}, "body.usageDetails"),
        ("generation-create", {"id": "g", "costDetails": {"input": "0.1"}}, "body.costDetails.input"),
        ("generation-update", {"id": "g", "model": 4}, "body.model"),
    ],
)
def test_observation_body_errors(type_: str, body: dict[str, Any], fragment: str) -> None:
    e = err(event(type_, body))
    assert (e.status, e.message) == (400, "Invalid request data")
    assert fragment in e.error


def test_prompt_pair_both_null_is_fine() -> None:
    assert ok(event("generation-create", {"id": "g", "promptName": None, "promptVersion": None}))


def test_integral_float_is_an_integer() -> None:
    v = ok(
        event(
            "generation-create", {"id": "g", "usage": {"input": 3.0}, "promptName": "p", "promptVersion": 2.0}
        )
    )
    assert v.body["usage"] == {"input": 3}
    assert type(v.body["promptVersion"]) is int


def test_legacy_observation_events() -> None:
    v = ok(
        event("observation-create", {"id": "o", "type": "GENERATION", "environment": "prod", "model": "m"})
    )
    assert (v.kind, v.observation_type, v.entity_id) == ("observation", "GENERATION", "o")
    assert v.body == {"id": "o", "type": "GENERATION", "model": "m", "environment": "default"}
    v = ok(event("observation-update", {"type": "SPAN"}))
    assert (v.observation_type, v.entity_id) == ("SPAN", None)


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"id": "o"}, "body.type: required"),
        ({"id": "o", "type": "TOOL"}, "body.type"),
        ({"id": "o", "type": "SPAN", "modelParameters": {"stop": ["x"]}}, "body.modelParameters.stop"),
    ],
)
def test_legacy_observation_errors(body: dict[str, Any], fragment: str) -> None:
    assert fragment in err(event("observation-create", body)).error


# ---------------------------------------------------------------------------------------------------------
# Score bodies
# ---------------------------------------------------------------------------------------------------------


def score(**body: Any) -> dict[str, Any]:
    return event("score-create", {"id": "sc", "name": "quality", **body})


@pytest.mark.parametrize(
    "body",
    [
        {"traceId": "t", "value": 1},
        {"traceId": "t", "observationId": "o", "value": 0.5},
        {"sessionId": "s", "value": "good"},
        {"datasetRunId": "r", "value": "good", "dataType": "CATEGORICAL"},
        {"traceId": "t", "value": 1, "dataType": "BOOLEAN"},
        {"traceId": "t", "value": 0, "dataType": "BOOLEAN"},
        {"traceId": "t", "value": "fixed text", "dataType": "CORRECTION"},
        {"traceId": "t", "value": "x" * 500, "dataType": "TEXT"},
        {"traceId": "t", "value": -3, "dataType": "NUMERIC", "source": "EVAL", "configId": "c"},
        {"traceId": "t", "value": 1, "source": "ANNOTATION"},  # accepted here, dropped by the merge
    ],
)
def test_score_valid(body: dict[str, Any]) -> None:
    v = ok(score(**body))
    assert (v.kind, v.entity_id) == ("score", "sc")
    assert v.body["source"] == body.get("source", "API")
    assert v.body["environment"] == "default"


def test_score_numeric_value_is_float() -> None:
    assert ok(score(traceId="t", value=3)).body["value"] == 3.0
    assert type(ok(score(traceId="t", value=3)).body["value"]) is float


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"value": 1}, SCOPE_MSG),
        ({"traceId": "t", "sessionId": "s", "value": 1}, SCOPE_MSG),
        ({"sessionId": "s", "datasetRunId": "r", "value": 1}, SCOPE_MSG),
        ({"sessionId": "s", "observationId": "o", "value": 1}, SCOPE_MSG),
        ({"traceId": "", "value": 1}, SCOPE_MSG),
        ({"traceId": "t"}, "body.value: required"),
        ({"traceId": "t", "value": [1]}, "body.value: expected number or string"),
        ({"traceId": "t", "value": True}, "body.value: expected number or string"),
        (
            {"traceId": "t", "value": "a", "dataType": "NUMERIC"},
            "body.value: NUMERIC scores require a numeric value",
        ),
        (
            {"traceId": "t", "value": 2, "dataType": "BOOLEAN"},
            "body.value: BOOLEAN scores require the number 0 or 1",
        ),
        (
            {"traceId": "t", "value": "1", "dataType": "BOOLEAN"},
            "body.value: BOOLEAN scores require the number 0 or 1",
        ),
        (
            {"traceId": "t", "value": 1, "dataType": "CATEGORICAL"},
            "body.value: CATEGORICAL scores require a string value",
        ),
        ({"traceId": "t", "value": 1, "dataType": "TEXT"}, "body.value: TEXT scores require a string value"),
        (
            {"traceId": "t", "value": "", "dataType": "TEXT"},
            "body.value: TEXT scores must be 1 to 500 characters",
        ),
        (
            {"traceId": "t", "value": "x" * 501, "dataType": "TEXT"},
            "body.value: TEXT scores must be 1 to 500 characters",
        ),
        (
            {"traceId": "t", "value": "x", "dataType": "CORRECTION", "configId": "c"},
            "body.configId: CORRECTION scores cannot reference a score config",
        ),
        ({"traceId": "t", "value": 1, "dataType": "PERCENT"}, "body.dataType: must be one of"),
        ({"traceId": "t", "value": 1, "source": "USER"}, "body.source: must be one of API, EVAL, ANNOTATION"),
    ],
)
def test_score_errors(body: dict[str, Any], expected: str) -> None:
    e = err(score(**body))
    assert (e.status, e.message) == (400, "Invalid request data")
    assert e.error.startswith(expected)


def test_score_name_required() -> None:
    assert err(event("score-create", {"traceId": "t", "value": 1})).error.startswith("body.name")
    assert err(event("score-create", {"name": "", "traceId": "t", "value": 1})).error.startswith("body.name")


# ---------------------------------------------------------------------------------------------------------
# Usage and cost normalisation
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("usage", "details", "expected"),
    [
        (None, None, {}),
        ({}, {}, {}),
        ({"input": 10, "output": 20}, None, {"input": 10, "output": 20, "total": 30}),
        ({"input": 10, "output": 20, "total": 99}, None, {"input": 10, "output": 20, "total": 99}),
        ({"input": 10}, None, {"input": 10, "total": 10}),
        ({"output": 7}, None, {"output": 7, "total": 7}),
        ({"input": 0, "output": 5}, None, {"input": 0, "output": 5, "total": 0}),  # `input ?? output`
        ({"input": 10, "output": 20, "total": 0}, None, {"input": 10, "output": 20, "total": 30}),
        ({"unit": "TOKENS"}, None, {}),
        # usageDetails present -> no derived total; details overlay the legacy keys
        ({"input": 10, "output": 20}, {"input": 11, "cached": 2}, {"input": 11, "output": 20, "cached": 2}),
        (
            {"promptTokens": 5, "completionTokens": 7, "totalTokens": 12, "input": 100},
            None,
            {"input": 5, "output": 7, "total": 12},
        ),
        ({"promptTokens": 5, "completionTokens": 7}, None, {"input": 5, "output": 7, "total": 12}),
        # OpenAI chat-completion usage: details split out and subtracted, nulls skipped
        (
            None,
            {
                "prompt_tokens": 100,
                "completion_tokens": 50,
                "total_tokens": 150,
                "prompt_tokens_details": {"cached_tokens": 30, "audio_tokens": None},
                "completion_tokens_details": {"reasoning_tokens": 20},
            },
            {
                "input": 70,
                "input_cached_tokens": 30,
                "output": 30,
                "output_reasoning_tokens": 20,
                "total": 150,
            },
        ),
        (
            None,
            {
                "prompt_tokens": 10,
                "completion_tokens": 0,
                "total_tokens": 10,
                "prompt_tokens_details": {"c": 30},
            },
            {"input": 0, "input_c": 30, "output": 0, "total": 10},
        ),
        # OpenAI Responses usage
        (
            None,
            {
                "input_tokens": 40,
                "output_tokens": 60,
                "total_tokens": 100,
                "input_tokens_details": {"cached_tokens": 10},
                "output_tokens_details": {"reasoning_tokens": 15},
            },
            {
                "input": 30,
                "input_cached_tokens": 10,
                "output": 45,
                "output_reasoning_tokens": 15,
                "total": 100,
            },
        ),
        # not strict (extra key) -> free map: nested objects dropped, ints kept verbatim
        (
            None,
            {
                "prompt_tokens": 3,
                "completion_tokens": 4,
                "total_tokens": 7,
                "prompt_tokens_details": {"a": 1},
                "x": 1,
            },
            {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7, "x": 1},
        ),
        # free map: non-negative ints and parseInt-able strings only
        (
            None,
            {
                "input": 5,
                "s": "12",
                "junk": "7abc",
                "hex": "0x10",
                "neg": -1,
                "negs": "-3",
                "f": 1.5,
                "w": "abc",
                "b": True,
                "n": None,
                "f2": 2.0,
            },
            {"input": 5, "s": 12, "junk": 7, "hex": 16, "f2": 2},
        ),
    ],
)
def test_normalise_usage(usage: Any, details: Any, expected: dict[str, int]) -> None:
    assert normalise_usage(usage, details) == expected


@pytest.mark.parametrize(
    ("usage", "details", "expected"),
    [
        (None, None, {}),
        ({}, {}, {}),
        (
            {"inputCost": 0.1, "outputCost": 0.2, "totalCost": 0.3},
            None,
            {"input": 0.1, "output": 0.2, "total": 0.3},
        ),
        ({"input": 1, "inputCost": 1}, None, {"input": 1.0}),
        ({"promptTokens": 1, "inputCost": 0.1}, None, {}),  # OpenAI style: costs discarded
        ({"inputCost": 0.1}, {"input": 0.5, "cache": 0.01}, {"input": 0.5, "cache": 0.01}),
        (None, {"a": -1, "b": None, "c": "1", "d": 0, "e": float("nan")}, {"d": 0.0}),
    ],
)
def test_normalise_cost(usage: Any, details: Any, expected: dict[str, float]) -> None:
    result = normalise_cost(usage, details)
    assert result == expected
    assert all(type(v) is float for v in result.values())


# ---------------------------------------------------------------------------------------------------------
# Robustness
# ---------------------------------------------------------------------------------------------------------

EVENT_TYPES = [
    "trace-create",
    "span-create",
    "span-update",
    "generation-create",
    "generation-update",
    "event-create",
    "agent-create",
    "tool-create",
    "score-create",
    "sdk-log",
    "observation-create",
    "observation-update",
    "dataset-run-item-create",
    "nonsense",
]
BODY_KEYS = [
    "id",
    "traceId",
    "name",
    "timestamp",
    "startTime",
    "endTime",
    "completionStartTime",
    "metadata",
    "input",
    "output",
    "level",
    "model",
    "modelParameters",
    "usage",
    "usageDetails",
    "costDetails",
    "promptName",
    "promptVersion",
    "value",
    "dataType",
    "source",
    "sessionId",
    "observationId",
    "datasetRunId",
    "configId",
    "tags",
    "public",
    "environment",
    "type",
    "userId",
]
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
    | st.sampled_from(
        [TS, "2024-05-01T12:00:00", "TOKENS", "GENERATION", "BOOLEAN", "ANNOTATION", "ERROR", ""]
    )
)
json_like = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
bodies = st.dictionaries(st.sampled_from(BODY_KEYS), json_like, max_size=10) | json_like
events = st.fixed_dictionaries(
    {},
    optional={
        "id": st.text(max_size=5) | json_like,
        "type": st.sampled_from(EVENT_TYPES) | json_like,
        "timestamp": st.sampled_from([TS, "2024-05-01T12:00:00", "bad"]) | json_like,
        "body": bodies,
        "metadata": json_like,
    },
)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=events | json_like, access=st.sampled_from(["project", "scores"]))
def test_validate_event_never_raises(raw: Any, access: str) -> None:
    result = validate_event(raw, access)
    assert result is None or isinstance(result, ValidEvent | EventError)
    if isinstance(result, EventError):
        assert result.status in (400, 401)
        assert isinstance(result.id, str) and isinstance(result.error, str)
        assert result.message == ("Authentication error" if result.status == 401 else "Invalid request data")
    if isinstance(result, ValidEvent):
        assert result.kind in ("trace", "observation", "score")
        assert isinstance(result.timestamp, int)
        assert isinstance(result.body.get("environment"), str)


@given(usage=json_like, details=json_like)
@settings(max_examples=300, deadline=None)
def test_normalisers_never_raise(usage: Any, details: Any) -> None:
    u = normalise_usage(usage, details)
    c = normalise_cost(usage, details)
    assert all(isinstance(k, str) and type(v) is int for k, v in u.items())
    assert all(isinstance(k, str) and type(v) is float for k, v in c.items())
