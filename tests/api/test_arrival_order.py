"""The stored row does not depend on the order or batching in which an entity's events arrive."""

from __future__ import annotations

import itertools

import pytest

from lightfuse.services.ingestion.events import validate_event
from lightfuse.services.ingestion.merge import merge_observation, merge_trace


def ts(second: int) -> str:
    return f"2026-01-01T00:00:{second:02d}.000Z"


TRACE_EVENTS = [
    {
        "id": "t1",
        "type": "trace-create",
        "timestamp": ts(10),
        "body": {
            "id": "tr",
            "name": "first",
            "input": "A",
            "metadata": {"a": 1},
            "tags": ["x"],
            "userId": "u1",
        },
    },
    {
        "id": "t2",
        "type": "trace-create",
        "timestamp": ts(15),
        "body": {"id": "tr", "input": "C", "metadata": {"b": 2}, "tags": ["y"], "output": ""},
    },
    {
        "id": "t3",
        "type": "trace-create",
        "timestamp": ts(20),
        "body": {"id": "tr", "name": "last", "output": {"answer": 42}, "userId": None, "public": True},
    },
]
OBS_EVENTS = [
    {
        "id": "o1",
        "type": "generation-create",
        "timestamp": ts(10),
        "body": {
            "id": "ob",
            "traceId": "tr",
            "name": "gen",
            "input": [{"role": "user", "content": "hi"}],
            "model": "gpt-4o",
            "startTime": ts(10),
        },
    },
    {
        "id": "o2",
        "type": "generation-update",
        "timestamp": ts(12),
        "body": {"id": "ob", "output": "partial", "usageDetails": {"input": 10, "output": 1}},
    },
    {
        "id": "o3",
        "type": "generation-update",
        "timestamp": ts(14),
        "body": {
            "id": "ob",
            "output": "final",
            "endTime": ts(14),
            "usageDetails": {"input": 10, "output": 5},
        },
    },
]
COMPARED_TRACE = ("name", "input", "output", "metadata", "tags", "userId", "public")
COMPARED_OBS = ("name", "input", "output", "model", "usageDetails", "endTime", "startTime")


def expected(events, merge, **kw):
    valid = [validate_event(e, "project") for e in events]
    return merge(None, valid, "project-1", 0, **kw)


@pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
def test_trace_row_is_independent_of_arrival_order(api, order):
    for i in order:  # one request per event: each later-arriving older event forces a replay
        assert api.ingest([TRACE_EVENTS[i]]).json()["errors"] == []
    got = api.client.get("/api/public/traces/tr", auth=api.auth).json()
    want = expected(TRACE_EVENTS, merge_trace)
    assert got["name"] == want["name"] == "last"
    assert got["input"] == want["input"] == "C"  # latest truthy input, even when it arrived last
    assert got["output"] == want["output"] == {"answer": 42}
    assert got["metadata"] == want["metadata"] == {"a": 1, "b": 2}
    assert sorted(got["tags"]) == want["tags"] == ["x", "y"]
    assert got["userId"] is None and want["user_id"] is None
    assert got["public"] is True
    # the trace timestamp is first-writer-wins (Langfuse's rule): the first event to arrive sets it
    assert got["timestamp"] == TRACE_EVENTS[order[0]]["timestamp"]


@pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
def test_observation_row_is_independent_of_arrival_order(api, order):
    api.ingest([TRACE_EVENTS[0]])
    for i in order:
        assert api.ingest([OBS_EVENTS[i]]).json()["errors"] == []
    got = api.client.get("/api/public/observations/ob", auth=api.auth).json()
    want = expected(OBS_EVENTS, merge_observation, new_trace_id=lambda: "unused")
    assert got["output"] == want["output"] == "final"
    assert got["input"] == [{"role": "user", "content": "hi"}]
    assert got["usageDetails"] == {"input": 10, "output": 5, "total": 15}
    assert got["name"] == "gen" and got["model"] == "gpt-4o" and got["type"] == "GENERATION"
    assert got["endTime"] == ts(14)
    # start_time is first-writer-wins: set by the first event to arrive (its startTime or its timestamp)
    assert got["startTime"] == (ts(10) if order[0] == 0 else OBS_EVENTS[order[0]]["timestamp"])
    assert got["calculatedTotalCost"] == pytest.approx(10 * 2.5e-6 + 5 * 1e-5)
