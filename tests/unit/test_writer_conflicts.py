"""The ingestion writer beside another writer of the same Postgres database (a second server process): a commit
that Postgres aborts as a deadlock is run again, never answered as a per-event error, and loses no event."""

from __future__ import annotations

import logging
import threading
import time

from lightfuse.services.ingestion.events import validate_event
from lightfuse.services.ingestion.pipeline import IngestionPipeline
from lightfuse.services.pricing.model_registry import ModelRegistry
from lightfuse.store.sql import migrate
from lightfuse.store.sql.database import make_engine
from lightfuse.store.sql.tracing import writes as tracing_writes


def _events(n: int, meta_key: str) -> list:
    raw = [
        {
            "id": f"{meta_key}-t",
            "type": "trace-create",
            "timestamp": f"2026-01-01T00:00:0{n}.000Z",
            "body": {"id": "t1", "metadata": {meta_key: n}},
        },
        {
            "id": f"{meta_key}-o",
            "type": "span-update",
            "timestamp": f"2026-01-01T00:00:0{n}.000Z",
            "body": {"id": "o1", "traceId": "t1", "metadata": {meta_key: n}},
        },
    ]
    return [validate_event(e, "project") for e in raw]


def _await_a_lock_wait(engine, sessions: int = 1) -> None:
    """Until ``sessions`` other sessions of the database wait for a lock (bounded: about 10 s)."""
    with engine.connect() as conn:
        for _ in range(200):
            waiting = conn.exec_driver_sql(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
            ).scalar()
            conn.rollback()
            if waiting >= sessions:
                return
            time.sleep(0.05)
    raise AssertionError("no session waited for a lock")


def test_a_deadlocked_commit_is_run_again(pg_database_url, caplog):
    engine = make_engine(pg_database_url)
    migrate.upgrade(engine)
    pipeline = IngestionPipeline(engine, ModelRegistry(engine).price_book)
    pipeline.start()
    try:
        assert pipeline.submit_sync("p", _events(1, "first")) == {}
        # The other writer holds the observation and then asks for the trace, which this writer locked before
        # asking for the observation: a cycle. With a long deadlock_timeout of its own, the other session
        # waits, and it is this writer's deadlock check (after the default 1 s) that finds the cycle and
        # aborts it.
        other = engine.connect()
        other_tx = other.begin()
        other.exec_driver_sql("SET LOCAL deadlock_timeout = '30s'")
        tracing_writes.get_rows(other, "observation", "p", ["o1"])
        caplog.set_level(logging.INFO, logger="lightfuse.services.ingestion.pipeline")
        future = pipeline.submit_nowait("p", _events(2, "second"))
        _await_a_lock_wait(engine)  # the writer holds the trace and waits for the observation
        got_trace = threading.Thread(target=tracing_writes.get_rows, args=(other, "trace", "p", ["t1"]))
        got_trace.start()
        got_trace.join(timeout=30)  # returns once the writer's transaction was aborted (or committed)
        assert not got_trace.is_alive()
        other_tx.commit()
        other.close()
        assert future.result(timeout=30) == {}  # no per-event error
    finally:
        pipeline.stop()
    assert any("conflicted with another writer" in r.getMessage() for r in caplog.records)
    assert not any(r.levelno >= logging.ERROR for r in caplog.records)  # not even the one-by-one fallback
    with engine.connect() as conn:
        for kind, entity_id in (("trace", "t1"), ("observation", "o1")):
            row = tracing_writes.get_rows(conn, kind, "p", [entity_id])[entity_id]
            assert row["metadata"] == {"first": 1, "second": 2}, kind
    engine.dispose()
