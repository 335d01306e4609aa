"""The ingestion writer on SQLite: the WAL stays bounded under sustained writes, and a commit by another
connection while the writer works does not fail the writer's group commit."""

from __future__ import annotations

import logging
import threading
import uuid

from lightfuse.services.ingestion.events import validate_event
from lightfuse.services.ingestion.pipeline import IngestionPipeline
from lightfuse.services.pricing.model_registry import ModelRegistry
from lightfuse.store.sql import migrate
from lightfuse.store.sql.database import make_engine


def _events(n: int) -> list:
    out = []
    for _ in range(n):
        tid = str(uuid.uuid4())
        out.append(
            validate_event(
                {
                    "id": str(uuid.uuid4()),
                    "type": "trace-create",
                    "timestamp": "2026-01-01T00:00:00.000Z",
                    "body": {"id": tid, "name": "t", "input": "x" * 3000},
                },
                "project",
            )
        )
    return out


def _pipeline(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'w.db'}")
    migrate.upgrade(engine)
    return engine, IngestionPipeline(engine, ModelRegistry(engine).price_book)


def test_wal_is_rewound_once_it_outgrows_its_bound(tmp_path):
    engine, pipeline = _pipeline(tmp_path)
    wal = tmp_path / "w.db-wal"
    checkpointer = pipeline._checkpointer  # driven by hand here instead of by its timer thread
    restarts = []
    real_truncate = checkpointer.truncate
    checkpointer.truncate = lambda conn: restarts.append(real_truncate(conn)) or restarts[-1]
    pipeline.start()
    try:
        with engine.connect() as conn:
            max_frames = 16  # 64 KiB of 4 KiB pages: every round below outgrows it
            sizes = []
            for _ in range(12):
                assert pipeline.submit_sync("p", _events(100)) == {}
                checkpointer.tick(conn, max_frames)
                assert checkpointer.truncate_wanted.is_set()
                assert pipeline.submit_sync("p", _events(1)) == {}  # the writer rewinds after this commit
                assert not checkpointer.truncate_wanted.is_set()
                sizes.append(wal.stat().st_size)
            assert restarts == [True] * 12
            assert max(sizes) < 3 * 1024 * 1024, sizes  # ~300 KB of rows per round, never piled up
        with engine.connect() as conn:
            assert conn.exec_driver_sql("select count(*) from traces").scalar() == 12 * 101
    finally:
        pipeline.stop()
        engine.dispose()


def test_writer_holds_the_write_lock_from_the_start_of_its_commit(tmp_path, caplog):
    """Another connection commits while the writer waits: the writer must not be left with a stale read."""
    engine, pipeline = _pipeline(tmp_path)
    pipeline.start()
    assert pipeline.submit_sync("p", _events(1)) == {}  # the writer's connection exists from here on
    other = engine.raw_connection()
    cur = other.cursor()
    cur.execute("BEGIN IMMEDIATE")  # a web action holding the write lock
    cur.execute("UPDATE datasets SET id = id WHERE 0")
    result: dict = {}
    worker = threading.Thread(target=lambda: result.update(failures=pipeline.submit_sync("p", _events(5))))
    with caplog.at_level(logging.ERROR, logger="lightfuse"):
        worker.start()
        worker.join(timeout=0.5)  # the writer is now waiting for the lock
        cur.execute(
            "INSERT INTO trace_sessions (project_id, id, environment, bookmarked, public, created_at) "
            "VALUES ('p', 's', 'default', 0, 0, 1)"
        )
        other.commit()
        worker.join(timeout=30)
    other.close()
    pipeline.stop()
    assert result == {"failures": {}}
    assert not [r for r in caplog.records if "group commit" in r.getMessage()], caplog.text
    with engine.connect() as conn:
        assert conn.exec_driver_sql("select count(*) from traces").scalar() == 6
    engine.dispose()
