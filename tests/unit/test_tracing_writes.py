"""The writer's driver-level row store: what upsert_rows writes, get_rows reads back unchanged (both backends)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from lightfuse.services.ingestion_events import validate_event
from lightfuse.services.merge import merge_observation, merge_score, merge_trace
from lightfuse.services.pricing import PriceBook, enrich_observation
from lightfuse.store.sql import migrate, tracing_writes
from lightfuse.store.sql.database import make_engine


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request, tmp_path):
    url = f"sqlite:///{tmp_path / 'w.db'}" if request.param == "sqlite" else request.getfixturevalue("pg_database_url")
    eng = make_engine(url)
    migrate.upgrade(eng)
    yield eng
    eng.dispose()


def _event(event_type: str, body: dict) -> object:
    ev = validate_event({"id": f"e-{body['id']}", "type": event_type, "timestamp": "2026-01-02T03:04:05.678Z",
                         "body": body}, "project")
    assert not hasattr(ev, "status"), ev
    return ev


def test_rows_round_trip_with_json_booleans_io_and_nulls(engine):
    trace = merge_trace(None, [_event("trace-create", {
        "id": "t1", "name": "chat", "public": True, "tags": ["a", "b"], "metadata": {"k": {"n": [1, 2.5, None]}},
        "input": {"q": "hi"}, "output": "plain text", "userId": None})], "p", 1000)
    obs = enrich_observation(merge_observation(None, [_event("generation-create", {
        "id": "o1", "traceId": "t1", "startTime": "2026-01-02T03:04:05.000Z", "model": "gpt-4o",
        "modelParameters": {"temperature": 0.2}, "usageDetails": {"input": 10, "output": 5},
        "input": [{"role": "user", "content": "hi"}], "output": None})], "p", 1000, lambda: "x"), PriceBook([]))
    score = merge_score(None, [_event("score-create", {"id": "s1", "traceId": "t1", "name": "q", "value": 0.5,
                                                      "metadata": {"by": "test"}})], "p", 1000, lambda _id: None)
    with engine.begin() as conn:
        for kind, row in (("trace", trace), ("observation", obs), ("score", score)):
            tracing_writes.upsert_rows(conn, kind, [row])
    with engine.connect() as conn:
        for kind, row in (("trace", trace), ("observation", obs), ("score", score)):
            got = tracing_writes.get_rows(conn, kind, "p", [row["id"], "missing"])
            assert list(got) == [row["id"]]
            stored = got[row["id"]]
            assert {k: stored[k] for k in row} == row, kind
            # the types the merge relies on, not just equal values
            if kind == "trace":
                assert stored["public"] is True and stored["bookmarked"] is False
        assert tracing_writes.get_rows(conn, "trace", "other-project", ["t1"]) == {}


def test_get_rows_reads_long_id_lists_in_chunks(engine):
    rows = [merge_trace(None, [_event("trace-create", {"id": f"t{i}"})], "p", 1000) for i in range(1203)]
    with engine.begin() as conn:
        tracing_writes.upsert_rows(conn, "trace", rows)
    with engine.connect() as conn:
        got = tracing_writes.get_rows(conn, "trace", "p", [r["id"] for r in rows])
        assert len(got) == 1203
        assert conn.execute(sa.text("select count(*) from traces")).scalar() == 1203
