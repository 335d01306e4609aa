"""Merge rules of api-semantics §2.4, one test per rule."""

from __future__ import annotations

import copy
import itertools
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lightfuse.services.ingestion import entity_merge as entity_merge_module
from lightfuse.services.ingestion import merge as merge_module
from lightfuse.services.ingestion.events import ValidEvent, validate_event
from lightfuse.services.ingestion.merge import merge_observation, merge_score, merge_trace, order_events

P = "proj-1"
NOW = 1_800_000_000_000
T0 = 1_714_564_800_000  # 2024-05-01T12:00:00Z
_ids = itertools.count()


def iso(ms: int) -> str:
    sec, milli = divmod(ms - T0, 1000)
    assert 0 <= sec < 60, "helper only covers one minute"
    return f"2024-05-01T12:00:{sec:02d}.{milli:03d}Z"


def ev(type_: str, at: int, **body: Any) -> ValidEvent:
    """A validated event whose envelope timestamp is T0 + at ms."""
    result = validate_event(
        {"id": f"e{next(_ids)}", "type": type_, "timestamp": iso(T0 + at), "body": body}, "project"
    )
    assert isinstance(result, ValidEvent), result
    return result


def trace(at: int, **body: Any) -> ValidEvent:
    return ev("trace-create", at, **{"id": "t1", **body})


def span(type_: str, at: int, **body: Any) -> ValidEvent:
    return ev(type_, at, **{"id": "o1", **body})


def new_trace_id_factory() -> Any:
    calls: list[str] = []

    def make() -> str:
        calls.append(f"rand-{len(calls)}")
        return calls[-1]

    make.calls = calls  # type: ignore[attr-defined]
    return make


def obs(events: list[ValidEvent], stored: Any = None, make: Any = None) -> dict[str, Any]:
    return merge_observation(stored, events, P, NOW, make or new_trace_id_factory())  # type: ignore[return-value]


def no_config(config_id: str) -> None:
    return None


def sc(at: int, **body: Any) -> ValidEvent:
    return ev("score-create", at, **{"id": "s1", "name": "quality", **body})


# ---------------------------------------------------------------------------------------------------------
# Ordering
# ---------------------------------------------------------------------------------------------------------


def test_order_is_by_envelope_timestamp_then_create_first_then_input_order() -> None:
    a = span("span-update", 5, name="a")
    b = span("span-create", 5, name="b")
    c = span("span-update", 1, name="c")
    d = span("span-update", 5, name="d")
    assert [e.body["name"] for e in order_events([a, b, c, d])] == ["c", "b", "a", "d"]


def test_body_timestamps_never_order_events() -> None:
    early_body = trace(10, name="second", timestamp="2000-01-01T00:00:00Z")
    late_body = trace(0, name="first", timestamp="2030-01-01T00:00:00Z")
    assert merge_trace(None, [early_body, late_body], P, NOW)["name"] == "second"


# ---------------------------------------------------------------------------------------------------------
# Traces
# ---------------------------------------------------------------------------------------------------------


def test_new_trace_row() -> None:
    row = merge_trace(
        None, [trace(0, name="n", userId="u", environment="Langfuse-Prod", tags=["b", "a"])], P, NOW
    )
    assert row == {
        "project_id": P,
        "id": "t1",
        "timestamp": T0,
        "name": "n",
        "user_id": "u",
        "session_id": None,
        "release": None,
        "version": None,
        "environment": "prod",
        "public": False,
        "bookmarked": False,
        "tags": ["a", "b"],
        "metadata": {},
        "input": None,
        "output": None,
        "created_at": NOW,
        "updated_at": NOW,
        "last_event_ts": T0,
    }


def test_trace_timestamp_from_body_else_envelope() -> None:
    assert (
        merge_trace(None, [trace(7, timestamp="2024-01-01T00:00:00Z")], P, NOW)["timestamp"] == 1704067200000
    )
    assert merge_trace(None, [trace(7)], P, NOW)["timestamp"] == T0 + 7


def test_out_of_order_events_give_the_same_row() -> None:
    events = [trace(0, name="a", release="r1"), trace(5, name="b"), trace(9, name="c", version="v")]
    rows = [merge_trace(None, list(p), P, NOW) for p in itertools.permutations(events)]
    assert all(r == rows[0] for r in rows)
    assert (rows[0]["name"], rows[0]["release"], rows[0]["version"]) == ("c", "r1", "v")


def test_absent_key_does_not_overwrite_but_null_does() -> None:
    row = merge_trace(None, [trace(0, name="keep", userId="u"), trace(1, userId=None)], P, NOW)
    assert (row["name"], row["user_id"]) == ("keep", None)


def test_trace_immutables_first_writer_wins() -> None:
    row = merge_trace(
        None,
        [trace(5, environment="late", timestamp="2024-01-02T00:00:00Z"), trace(1, environment="early")],
        P,
        NOW,
    )
    assert (row["environment"], row["timestamp"]) == ("early", T0 + 1)
    stored = {**row, "created_at": 5, "environment": "stored-env", "timestamp": 42}
    again = merge_trace(stored, [trace(0, environment="x", timestamp="2024-01-03T00:00:00Z")], P, NOW)
    assert (again["environment"], again["timestamp"], again["created_at"], again["id"]) == (
        "stored-env",
        42,
        5,
        "t1",
    )


def test_metadata_deep_merge_later_wins() -> None:
    row = merge_trace(
        None,
        [
            trace(0, metadata={"a": {"x": 1, "y": 1}, "b": 1, "deep": {"l1": {"l2": "old", "keep": True}}}),
            trace(1, metadata={"a": {"y": 2}, "c": [1, 2], "deep": {"l1": {"l2": "new"}}}),
            trace(2, metadata={}),
            trace(3),
        ],
        P,
        NOW,
    )
    assert row["metadata"] == {
        "a": {"x": 1, "y": 2},
        "b": 1,
        "c": [1, 2],
        "deep": {"l1": {"l2": "new", "keep": True}},
    }


@pytest.mark.parametrize("value", ["text", 3, True, [1, "a"]])
def test_non_object_metadata_is_wrapped(value: Any) -> None:
    assert merge_trace(None, [trace(0, metadata=value)], P, NOW)["metadata"] == {"metadata": value}


def test_metadata_merge_does_not_mutate_stored_row() -> None:
    stored = merge_trace(None, [trace(0, metadata={"a": {"x": 1}})], P, NOW)
    merge_trace(stored, [trace(1, metadata={"a": {"x": 2}})], P, NOW)
    assert stored["metadata"] == {"a": {"x": 1}}


def test_tags_sorted_union_never_shrinks() -> None:
    stored = merge_trace(None, [trace(0, tags=["prod", "b"])], P, NOW)
    row = merge_trace(stored, [trace(1, tags=["a", "prod"]), trace(2, tags=[]), trace(3)], P, NOW)
    assert row["tags"] == ["a", "b", "prod"]


def test_io_is_last_truthy_value() -> None:
    row = merge_trace(
        None,
        [
            trace(0, input="first", output={"o": 1}),
            trace(1, input="second"),
            trace(2, input="", output=0),
            trace(3, input=0, output=False),
            trace(4, input=None, output={}),
            trace(5, input=False),
        ],
        P,
        NOW,
    )
    assert (row["input"], row["output"]) == ("second", {"o": 1})


def test_io_keeps_json_values_and_stored_value() -> None:
    stored = merge_trace(None, [trace(0, input={"messages": [1]}, output="123")], P, NOW)
    row = merge_trace(stored, [trace(1, input="")], P, NOW)
    assert (row["input"], row["output"]) == ({"messages": [1]}, "123")


def test_public_resets_and_bookmark_clears_on_every_trace_event() -> None:
    assert merge_trace(None, [trace(0, public=True)], P, NOW)["public"] is True
    row = merge_trace(None, [trace(0, public=True), trace(1, name="x")], P, NOW)
    assert row["public"] is False
    stored = {**merge_trace(None, [trace(0, public=True)], P, NOW), "bookmarked": True}
    row = merge_trace(stored, [trace(2, public=True)], P, NOW)
    assert (row["public"], row["bookmarked"]) == (True, False)


def test_trace_created_updated_and_last_event_ts() -> None:
    stored = {**merge_trace(None, [trace(5)], P, 100), "last_event_ts": T0 + 50}
    row = merge_trace(stored, [trace(9)], P, NOW)
    assert (row["created_at"], row["updated_at"], row["last_event_ts"]) == (100, NOW, T0 + 50)
    row = merge_trace(stored, [trace(60)], P, NOW)
    assert row["last_event_ts"] == T0 + 60


def test_trace_merge_rejects_other_entity_events() -> None:
    with pytest.raises(ValueError):
        merge_trace(None, [trace(0), span("span-create", 1)], P, NOW)
    with pytest.raises(ValueError):
        merge_trace(None, [], P, NOW)


# ---------------------------------------------------------------------------------------------------------
# Observations
# ---------------------------------------------------------------------------------------------------------


def test_new_observation_row_initialises_enrichment_fields() -> None:
    row = obs([span("generation-create", 0, traceId="t", name="llm", model="gpt-4o", environment="dev")])
    assert row == {
        "project_id": P,
        "id": "o1",
        "trace_id": "t",
        "type": "GENERATION",
        "parent_observation_id": None,
        "start_time": T0,
        "end_time": None,
        "completion_start_time": None,
        "name": "llm",
        "metadata": {},
        "level": "DEFAULT",
        "status_message": None,
        "version": None,
        "environment": "dev",
        "input": None,
        "output": None,
        "provided_model_name": "gpt-4o",
        "internal_model_id": None,
        "model_parameters": None,
        "provided_usage_details": {},
        "usage_details": {},
        "provided_cost_details": {},
        "cost_details": {},
        "total_cost": None,
        "prompt_id": None,
        "prompt_name": None,
        "prompt_version": None,
        "usage_pricing_tier_id": None,
        "usage_pricing_tier_name": None,
        "created_at": NOW,
        "updated_at": NOW,
        "last_event_ts": T0,
    }


def test_stored_enrichment_fields_are_left_alone() -> None:
    stored = {
        **obs([span("generation-create", 0, traceId="t")]),
        "usage_details": {"input": 1},
        "total_cost": 0.5,
        "internal_model_id": "m",
        "cost_details": {"total": 0.5},
        "usage_pricing_tier_id": "tier",
    }
    row = obs([span("generation-update", 1, usageDetails={"input": 9})], stored)
    assert (row["usage_details"], row["total_cost"], row["internal_model_id"], row["cost_details"]) == (
        {"input": 1},
        0.5,
        "m",
        {"total": 0.5},
    )
    assert row["usage_pricing_tier_id"] == "tier"
    assert row["provided_usage_details"] == {"input": 9}


def test_update_arriving_before_its_create_in_the_list() -> None:
    create = span("span-create", 0, traceId="t", name="created", startTime="2024-05-01T11:00:00Z")
    update = span("span-update", 3, name="updated", endTime="2024-05-01T12:00:05Z")
    row = obs([update, create])
    assert row == obs([create, update])
    assert (row["trace_id"], row["name"], row["start_time"], row["end_time"]) == (
        "t",
        "updated",
        T0 - 3_600_000,
        T0 + 5000,
    )


def test_update_with_earlier_timestamp_than_create_is_the_first_writer() -> None:
    make = new_trace_id_factory()
    update = span("span-update", 0, name="early-update")
    create = span("span-create", 5, traceId="t", name="create", startTime="2024-05-01T11:00:00Z")
    row = obs([create, update], make=make)
    # Immutables come from the earliest event: no traceId there -> a random trace for good; no startTime ->
    # its envelope time.
    assert (row["trace_id"], row["start_time"], row["name"]) == ("rand-0", T0, "create")
    assert make.calls == ["rand-0"]


def test_new_trace_id_only_called_when_needed() -> None:
    make = new_trace_id_factory()
    obs([span("span-create", 0, traceId="t")], make=make)
    assert make.calls == []


def test_equal_timestamps_create_applies_before_update() -> None:
    row = obs([span("span-update", 1, name="update"), span("span-create", 1, traceId="t", name="create")])
    assert (row["name"], row["trace_id"]) == ("update", "t")


def test_observation_immutables_first_writer_wins() -> None:
    first = obs([span("span-create", 0, traceId="t", startTime="2024-05-01T11:00:00Z", environment="a")])
    row = obs(
        [span("span-update", 5, traceId="other", startTime="2024-05-01T10:00:00Z", environment="b")], first
    )
    assert (row["trace_id"], row["start_time"], row["environment"], row["created_at"]) == (
        "t",
        T0 - 3_600_000,
        "a",
        NOW,
    )


def test_observation_type_follows_latest_event() -> None:
    row = obs([span("generation-create", 0, traceId="t"), span("span-update", 1)])
    assert row["type"] == "SPAN"
    legacy = obs([span("observation-create", 0, type="EVENT", traceId="t", environment="prod")])
    assert (legacy["type"], legacy["environment"]) == ("EVENT", "default")


def test_null_means_no_change_fields() -> None:
    first = span(
        "generation-create",
        0,
        traceId="t",
        endTime=iso(T0 + 10),
        completionStartTime=iso(T0 + 5),
        statusMessage="ok",
        parentObservationId="p",
        version="1",
        modelParameters={"t": 1},
    )
    row = obs(
        [
            first,
            span(
                "generation-update",
                1,
                endTime=None,
                completionStartTime=None,
                statusMessage=None,
                parentObservationId=None,
                version=None,
                modelParameters=None,
            ),
        ]
    )
    assert (row["end_time"], row["completion_start_time"], row["status_message"]) == (T0 + 10, T0 + 5, "ok")
    assert (row["parent_observation_id"], row["version"], row["model_parameters"]) == ("p", "1", {"t": 1})
    row = obs([first, span("generation-update", 1, modelParameters={})])
    assert row["model_parameters"] == {"t": 1}


def test_null_overwrites_name_model_level() -> None:
    first = span("generation-create", 0, traceId="t", name="n", model="m", level="ERROR")
    row = obs([first, span("generation-update", 1, name=None, model=None, level=None)])
    assert (row["name"], row["provided_model_name"], row["level"]) == (None, None, "DEFAULT")
    row = obs([first, span("generation-update", 1, name="n2")])
    assert (row["name"], row["provided_model_name"], row["level"]) == ("n2", "m", "ERROR")


def test_end_time_before_start_time_is_clamped() -> None:
    row = obs([span("span-create", 0, traceId="t", startTime=iso(T0 + 500), endTime=iso(T0 + 100))])
    assert row["end_time"] == T0 + 500


def test_observation_metadata_and_io() -> None:
    row = obs(
        [
            span("span-create", 0, traceId="t", metadata={"a": {"b": 1}}, input="q"),
            span("span-update", 1, metadata={"a": {"c": 2}}, input="", output=[1]),
        ]
    )
    assert (row["metadata"], row["input"], row["output"]) == ({"a": {"b": 1, "c": 2}}, "q", [1])


def test_usage_map_is_replaced_not_merged() -> None:
    create = span("generation-create", 0, traceId="t", usage={"input": 10, "output": 5})
    assert obs([create])["provided_usage_details"] == {"input": 10, "output": 5, "total": 15}
    row = obs([create, span("generation-update", 1, usageDetails={"input": 3})])
    assert row["provided_usage_details"] == {"input": 3}
    row = obs([create, span("generation-update", 1, usageDetails={}, usage={})])
    assert row["provided_usage_details"] == {"input": 10, "output": 5, "total": 15}


def test_cost_map_is_replaced_not_merged() -> None:
    create = span("generation-create", 0, traceId="t", costDetails={"input": 0.1, "output": 0.2})
    row = obs([create, span("generation-update", 1, usage={"totalCost": 0.5})])
    assert row["provided_cost_details"] == {"total": 0.5}
    row = obs([create, span("generation-update", 1, costDetails={"x": -1})])  # normalises to {} -> keep
    assert row["provided_cost_details"] == {"input": 0.1, "output": 0.2}


def test_prompt_link_from_latest_event_carrying_both() -> None:
    stored = {
        **obs([span("generation-create", 0, traceId="t", promptName="p", promptVersion=1)]),
        "prompt_id": "pid",
    }
    assert (stored["prompt_name"], stored["prompt_version"]) == ("p", 1)
    row = obs([span("generation-update", 1, name="x")], stored)
    assert (row["prompt_id"], row["prompt_name"], row["prompt_version"]) == ("pid", "p", 1)
    row = obs([span("generation-update", 1, promptName="p", promptVersion=1)], stored)
    assert row["prompt_id"] == "pid"
    row = obs([span("generation-update", 1, promptName="q", promptVersion=3)], stored)
    assert (row["prompt_id"], row["prompt_name"], row["prompt_version"]) == (None, "q", 3)


def test_observation_last_event_ts_and_created_at() -> None:
    stored = {**obs([span("span-create", 0, traceId="t")]), "created_at": 7, "last_event_ts": T0 + 100}
    row = obs([span("span-update", 200)], stored)
    assert (row["created_at"], row["updated_at"], row["last_event_ts"]) == (7, NOW, T0 + 200)


# ---------------------------------------------------------------------------------------------------------
# Scores
# ---------------------------------------------------------------------------------------------------------

CONFIGS = {
    "num": {
        "id": "num",
        "name": "accuracy",
        "data_type": "NUMERIC",
        "is_archived": False,
        "min_value": 0,
        "max_value": 1,
        "categories": None,
    },
    "cat": {
        "id": "cat",
        "name": "tone",
        "data_type": "CATEGORICAL",
        "is_archived": False,
        "min_value": None,
        "max_value": None,
        "categories": [{"label": "good", "value": 2}, {"label": "bad", "value": -1}],
    },
    "bool": {
        "id": "bool",
        "name": "correct",
        "data_type": "BOOLEAN",
        "is_archived": False,
        "min_value": None,
        "max_value": None,
        "categories": [{"label": "True", "value": 1}, {"label": "False", "value": 0}],
    },
    "text": {
        "id": "text",
        "name": "notes",
        "data_type": "TEXT",
        "is_archived": False,
        "min_value": None,
        "max_value": None,
        "categories": None,
    },
    "old": {
        "id": "old",
        "name": "legacy",
        "data_type": "NUMERIC",
        "is_archived": True,
        "min_value": None,
        "max_value": None,
        "categories": None,
    },
}


def score_row(*events: ValidEvent, stored: Any = None) -> dict[str, Any] | None:
    return merge_score(stored, list(events), P, NOW, CONFIGS.get)  # type: ignore[return-value]


def picked(row: dict[str, Any] | None, *keys: str) -> tuple[Any, ...]:
    assert row is not None
    return tuple(row[k] for k in keys)


KEYS = ("name", "value", "string_value", "data_type")


def test_new_numeric_score_row() -> None:
    row = score_row(sc(0, traceId="t", value=0.7, comment="c", metadata={"m": 1}, environment="Prod"))
    assert row == {
        "project_id": P,
        "id": "s1",
        "timestamp": T0,
        "name": "quality",
        "value": 0.7,
        "string_value": None,
        "data_type": "NUMERIC",
        "source": "API",
        "comment": "c",
        "metadata": {"m": 1},
        "author_user_id": None,
        "config_id": None,
        "queue_id": None,
        "execution_trace_id": None,
        "trace_id": "t",
        "observation_id": None,
        "session_id": None,
        "dataset_run_id": None,
        "environment": "prod",
        "created_at": NOW,
        "updated_at": NOW,
        "last_event_ts": T0,
    }


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"value": 3}, ("quality", 3.0, None, "NUMERIC")),
        ({"value": "good"}, ("quality", 0.0, "good", "CATEGORICAL")),
        ({"value": 1, "dataType": "BOOLEAN"}, ("quality", 1.0, "True", "BOOLEAN")),
        ({"value": 0, "dataType": "BOOLEAN"}, ("quality", 0.0, "False", "BOOLEAN")),
        ({"value": "free text", "dataType": "TEXT"}, ("quality", 0.0, "free text", "TEXT")),
        ({"value": "fixed output", "dataType": "CORRECTION"}, ("output", 0.0, "fixed output", "CORRECTION")),
        (
            {"value": "fixed", "dataType": "CORRECTION", "source": "ANNOTATION"},
            ("output", 0.0, "fixed", "CORRECTION"),
        ),
        ({"value": 0.5, "configId": "num"}, ("accuracy", 0.5, None, "NUMERIC")),
        (
            {"value": 1, "configId": "num", "dataType": "NUMERIC"},
            ("accuracy", 1.0, None, "NUMERIC"),
        ),  # inclusive
        ({"value": 0, "configId": "num", "source": "ANNOTATION"}, ("accuracy", 0.0, None, "NUMERIC")),
        ({"value": "bad", "configId": "cat"}, ("tone", -1.0, "bad", "CATEGORICAL")),
        ({"value": 1, "configId": "bool"}, ("correct", 1.0, "True", "BOOLEAN")),
        ({"value": "note", "configId": "text", "dataType": "TEXT"}, ("notes", 0.0, "note", "TEXT")),
    ],
)
def test_score_inflation(body: dict[str, Any], expected: tuple[Any, ...]) -> None:
    assert picked(score_row(sc(0, traceId="t", **body)), *KEYS) == expected


@pytest.mark.parametrize(
    "body",
    [
        {"value": 1, "configId": "missing"},
        {"value": 0.5, "configId": "old"},  # archived
        {"value": 1, "configId": "num", "dataType": "BOOLEAN"},  # dataType mismatch (1 is in range)
        {"value": 1.01, "configId": "num"},
        {"value": -0.01, "configId": "num"},
        {"value": "ok", "configId": "cat"},  # unknown category label
        {"value": 2, "configId": "cat"},  # categorical needs the label
        {"value": "x", "configId": "num"},
        {"value": 1, "configId": "text"},
        {"value": 1, "source": "ANNOTATION"},  # annotation without config
        {"value": "x", "source": "ANNOTATION"},
    ],
)
def test_score_dropped(body: dict[str, Any]) -> None:
    assert score_row(sc(0, traceId="t", **body)) is None


def test_correction_must_be_trace_scoped() -> None:
    assert score_row(sc(0, sessionId="s", value="x", dataType="CORRECTION")) is None


def test_dropped_event_keeps_stored_row_and_others_still_apply() -> None:
    stored = score_row(sc(0, traceId="t", value=0.2, configId="num"))
    assert score_row(sc(1, traceId="t", value=7, configId="num"), stored=stored) is None
    row = score_row(
        sc(1, traceId="t", value=7, configId="num"),
        sc(2, traceId="t", value=0.9, configId="num"),
        stored=stored,
    )
    assert picked(row, "value", "last_event_ts") == (0.9, T0 + 2)


def test_score_immutables_first_writer_wins() -> None:
    row = score_row(
        sc(5, traceId="late", value=2, environment="b"), sc(1, traceId="early", value=1, environment="a")
    )
    assert picked(row, "timestamp", "trace_id", "environment", "value") == (T0 + 1, "early", "a", 2.0)
    stored = {**row, "created_at": 3, "author_user_id": "user-1"}  # type: ignore[dict-item]
    again = score_row(sc(9, traceId="other", value=3), stored=stored)
    assert picked(again, "timestamp", "trace_id", "environment", "created_at", "author_user_id", "value") == (
        T0 + 1,
        "early",
        "a",
        3,
        "user-1",
        3.0,
    )


def test_score_update_fields_and_metadata() -> None:
    row = score_row(
        sc(0, traceId="t", observationId="o", value=1, comment="c", metadata={"a": {"x": 1}}, queueId="q"),
        sc(1, traceId="t", value=2, comment=None, metadata="note"),
    )
    assert picked(row, "observation_id", "comment", "metadata", "queue_id", "source") == (
        "o",
        None,
        {"a": {"x": 1}, "metadata": "note"},
        "q",
        "API",
    )


def test_score_merge_rejects_other_entity_events() -> None:
    with pytest.raises(ValueError):
        merge_score(None, [trace(0)], P, NOW, no_config)


# ---------------------------------------------------------------------------------------------------------
# Robustness: whatever validate_event accepts, the merge functions can fold
# ---------------------------------------------------------------------------------------------------------

_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**20), 10**20)
    | st.floats(allow_nan=False)
    | st.text(max_size=8),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=5), c, max_size=3),
    max_leaves=10,
)
_bodies = st.fixed_dictionaries(
    {"id": st.sampled_from(["x1", "x2"])},
    optional={
        "traceId": st.sampled_from(["t1", "t2", None]),
        "sessionId": st.sampled_from(["s1", None]),
        "name": st.text(max_size=5) | st.none(),
        "timestamp": st.sampled_from([iso(T0), None]),
        "startTime": st.sampled_from([iso(T0 + 1), iso(T0 + 3), None]),
        "endTime": st.sampled_from([iso(T0), iso(T0 + 2), None]),
        "metadata": _json,
        "input": _json,
        "output": _json,
        "tags": st.lists(st.sampled_from(["a", "b", "c"]), max_size=3),
        "public": st.booleans() | st.none(),
        "level": st.sampled_from(["DEBUG", "ERROR", None]),
        "model": st.sampled_from(["gpt-4o", None]),
        "modelParameters": st.dictionaries(st.sampled_from(["t", "n"]), st.integers(0, 3) | st.none()),
        "usage": st.dictionaries(
            st.sampled_from(["input", "output", "total", "promptTokens"]), st.integers(0, 50)
        ),
        "usageDetails": st.dictionaries(st.text(max_size=4), _json, max_size=3),
        "costDetails": st.dictionaries(st.text(max_size=4), st.floats(0, 10) | st.none(), max_size=3),
        "value": st.sampled_from([0, 1, 0.5, 7, "good", "bad", "x"]),
        "dataType": st.sampled_from(["NUMERIC", "BOOLEAN", "CATEGORICAL", "TEXT", "CORRECTION", None]),
        "configId": st.sampled_from(["num", "cat", "bool", "text", "old", "missing", None]),
        "source": st.sampled_from(["API", "EVAL", "ANNOTATION", None]),
        "environment": st.sampled_from(["prod", "Langfuse-dev", None]),
    },
)
_raw_events = st.lists(
    st.tuples(
        st.sampled_from(["trace-create", "span-create", "span-update", "generation-update", "score-create"]),
        st.integers(0, 5),
        _bodies,
    ),
    max_size=6,
)


@settings(max_examples=300, deadline=None)
@given(raw=_raw_events, order=st.randoms(use_true_random=False))
def test_merge_accepts_anything_validation_accepts_and_ignores_input_order(raw: list, order: Any) -> None:
    valid: list[ValidEvent] = []
    for i, (type_, at, body) in enumerate(raw):
        if type_ == "score-create":  # make most score bodies pass the schema so the merge sees them
            body = {
                **body,
                "name": "q",
                "traceId": body.get("traceId") or "t1",
                "value": body.get("value", 1),
            }
            body.pop("sessionId", None)
        result = validate_event(
            {"id": f"h{i}", "type": type_, "timestamp": iso(T0 + at), "body": body}, "project"
        )
        if isinstance(result, ValidEvent):
            valid.append(result)
    for kind in ("trace", "observation", "score"):
        for entity in ("x1", "x2"):
            evs = [e for e in valid if e.kind == kind and e.entity_id == entity]
            if not evs:
                continue
            shuffled = list(evs)
            order.shuffle(shuffled)
            # Same-timestamp same-rank events keep input order, so only compare when ties cannot reorder.
            keys = [(e.timestamp, e.type.endswith("-create")) for e in evs]
            stable = len(set(keys)) == len(keys)
            if kind == "trace":
                rows = [merge_trace(None, x, P, NOW) for x in (evs, shuffled)]
                assert rows[0]["id"] == entity and rows[0]["tags"] == sorted(rows[0]["tags"])
            elif kind == "observation":
                rows = [merge_observation(None, x, P, NOW, lambda: "rand") for x in (evs, shuffled)]
                assert rows[0]["level"] in ("DEBUG", "DEFAULT", "WARNING", "ERROR")
                end, start = rows[0]["end_time"], rows[0]["start_time"]
                assert end is None or end >= start
            else:
                rows = [merge_score(None, x, P, NOW, CONFIGS.get) for x in (evs, shuffled)]
                assert rows[0] is None or rows[0]["data_type"] in (
                    "NUMERIC",
                    "CATEGORICAL",
                    "BOOLEAN",
                    "TEXT",
                    "CORRECTION",
                )
            if stable:
                assert rows[0] == rows[1]


# ---------------------------------------------------------------------------------------------------------
# The writer's hot-path shortcuts in the merge helpers agree with the rules' plain definitions
# ---------------------------------------------------------------------------------------------------------


def _plain_truthy(value: Any) -> bool:
    """JavaScript truthiness, except that an empty object is falsy."""
    if value is None or value is False or value == "" or value == {}:
        return False
    return not (isinstance(value, int | float) and not isinstance(value, bool) and value == 0)


def _plain_deep_merge(base: dict, patch: dict) -> dict:
    out = dict(base)
    for key, value in patch.items():
        old = out.get(key)
        out[key] = (
            _plain_deep_merge(old, value) if isinstance(value, dict) and isinstance(old, dict) else value
        )
    return out


@given(_json)
def test_truthy_is_javascript_truthiness_with_empty_objects_falsy(value: Any) -> None:
    assert merge_module._truthy(value) is _plain_truthy(value)


@settings(max_examples=200)
@given(
    st.dictionaries(st.text(max_size=2), _json, max_size=4),
    st.dictionaries(st.text(max_size=2), _json, max_size=4),
)
def test_deep_merge_matches_its_definition_and_mutates_nothing(base: dict, patch: dict) -> None:
    before = copy.deepcopy((base, patch))
    merged = merge_module._deep_merge(base, patch)
    assert merged == _plain_deep_merge(base, patch)
    assert (base, patch) == before
    assert merged is not base and merged is not patch


@given(
    st.lists(
        st.tuples(st.integers(0, 3), st.sampled_from(["span-create", "span-update", "trace-create"])),
        max_size=6,
    )
)
def test_order_events_is_a_stable_sort_for_any_iterable(keys: list) -> None:
    events = [
        ValidEvent(id=f"e{i}", type=t, timestamp=ts, kind="observation", entity_id="o", body={})
        for i, (ts, t) in enumerate(keys)
    ]
    want = sorted(events, key=lambda e: (e.timestamp, 0 if e.type.endswith("-create") else 1))
    for given_as in (events, tuple(events), iter(events)):
        ordered = order_events(given_as)
        assert ordered == want and ordered is not events


@given(st.lists(st.integers(0, 10**13), max_size=4), st.none() | st.integers(0, 10**13))
def test_last_event_ts_is_the_newest_of_the_events_and_the_stored_row(stamps: list, stored_last: Any) -> None:
    events = order_events(
        ValidEvent(id=f"e{i}", type="span-update", timestamp=ts, kind="observation", entity_id="o", body={})
        for i, ts in enumerate(stamps)
    )
    stored = None if stored_last is None else {"created_at": 5, "last_event_ts": stored_last}
    row: dict[str, Any] = {}
    merge_module._finish(row, stored, events, NOW)
    candidates = [*stamps, *([] if stored_last is None else [stored_last])]
    assert row.get("last_event_ts") == (max(candidates) if candidates else None)
    assert row["created_at"] == (5 if stored else NOW) and row["updated_at"] == NOW


def test_new_observation_rows_never_share_a_map() -> None:
    first, second = obs([span("span-create", 0)]), obs([span("span-create", 0)])
    for key, value in first.items():
        if isinstance(value, dict | list):
            assert value is not second[key], key
    first["metadata"]["x"] = 1
    first["usage_details"]["input"] = 1
    assert obs([span("span-create", 0)])["metadata"] == {} and second["usage_details"] == {}


@given(st.dictionaries(st.sampled_from(["id", "input", "output", "name", "metadata"]), _json))
def test_log_body_drops_io_keeps_the_rest_in_order_and_mutates_nothing(body: dict) -> None:
    before = dict(body)
    logged = entity_merge_module.log_body(body)
    assert list(logged.items()) == [(k, v) for k, v in body.items() if k not in ("input", "output")]
    assert body == before and list(body) == list(before)
