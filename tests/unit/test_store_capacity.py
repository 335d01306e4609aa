"""Lack of space is recognised from every store and reaches callers as ``StoreFull``; the writer refuses a full
store's submissions as a whole and marks the store full until a commit succeeds again.

SQLite's own SQLITE_FULL is produced for real with ``PRAGMA max_page_count`` (no mount needed); the end-to-end
test on a full tmpfs is tests/e2e/test_disk_full.py.
"""

from __future__ import annotations

import errno
import sqlite3
import uuid

import psycopg.errors
import pytest
import sqlalchemy as sa
from sqlalchemy import event

from lightfuse.services.ingestion.events import validate_event
from lightfuse.services.ingestion.pipeline import IngestionPipeline
from lightfuse.services.ingestion.storage_health import StorageHealth
from lightfuse.services.pricing.model_registry import ModelRegistry
from lightfuse.store.capacity import StoreFull, disk_full_as_store_full, is_disk_full, probe_writable
from lightfuse.store.sql import migrate
from lightfuse.store.sql.database import make_engine


def _sqlite_full_error(tmp_path) -> sqlite3.OperationalError:
    conn = sqlite3.connect(tmp_path / "tiny.db")
    conn.execute("CREATE TABLE t (x BLOB)")
    conn.execute("PRAGMA max_page_count = 3")
    try:
        conn.execute("INSERT INTO t VALUES (?)", (b"x" * 100_000,))
    except sqlite3.OperationalError as exc:
        return exc
    finally:
        conn.close()
    raise AssertionError("SQLite did not run out of pages")


def test_lack_of_space_is_recognised_from_each_source(tmp_path):
    sqlite_full = _sqlite_full_error(tmp_path)
    assert is_disk_full(sqlite_full)
    assert is_disk_full(sa.exc.OperationalError("INSERT", {}, sqlite_full))  # as SQLAlchemy wraps it
    assert is_disk_full(
        sa.exc.OperationalError("INSERT", {}, psycopg.errors.DiskFull("could not extend file"))
    )
    assert is_disk_full(OSError(errno.ENOSPC, "No space left on device"))
    assert is_disk_full(OSError(errno.EDQUOT, "Disk quota exceeded"))
    # other failures are not lack of space
    assert not is_disk_full(sqlite3.OperationalError("database is locked"))
    assert not is_disk_full(sa.exc.OperationalError("SELECT", {}, psycopg.errors.QueryCanceled("timeout")))
    assert not is_disk_full(OSError(errno.EACCES, "Permission denied"))
    assert not is_disk_full(ValueError("x"))


def test_disk_full_as_store_full_converts_only_lack_of_space():
    with pytest.raises(StoreFull) as caught, disk_full_as_store_full():
        raise OSError(errno.ENOSPC, "No space left on device")
    assert isinstance(caught.value.__cause__, OSError)
    with pytest.raises(KeyError), disk_full_as_store_full():
        raise KeyError("other")


def test_probe_writes_where_the_store_lives(tmp_path, pg_database_url):
    sqlite_engine = make_engine(f"sqlite:///{tmp_path / 'p.db'}")
    assert probe_writable(sqlite_engine) is True
    assert not list(tmp_path.glob(".write-probe-*"))  # the probe cleans up after itself
    pg_engine = make_engine(pg_database_url)
    try:
        assert probe_writable(pg_engine) is True
    finally:
        pg_engine.dispose()
        sqlite_engine.dispose()


def _events(n: int) -> list:
    return [
        validate_event(
            {
                "id": str(uuid.uuid4()),
                "type": "trace-create",
                "timestamp": "2026-01-01T00:00:00Z",
                "body": {"id": str(uuid.uuid4()), "input": "x" * 2000},
            },
            "project",
        )
        for _ in range(n)
    ]


def test_writer_refuses_a_full_store_as_a_whole_and_recovers(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'w.db'}")
    migrate.upgrade(engine)
    limit = {"pages": 2**31}  # set at every BEGIN, so the writer's long-lived connection obeys it too

    @event.listens_for(engine, "begin")
    def _limit(conn):
        conn.connection.driver_connection.execute(f"PRAGMA max_page_count = {limit['pages']}")

    health = StorageHealth(engine, tmp_path)
    pipeline = IngestionPipeline(engine, ModelRegistry(engine).price_book, health=health)
    pipeline.start()
    try:
        assert pipeline.submit_sync("p", _events(5)) == {}
        with engine.connect() as conn:
            limit["pages"] = conn.exec_driver_sql("PRAGMA page_count").scalar() + 1
        with pytest.raises(StoreFull):
            pipeline.submit_sync("p", _events(50))
        assert health.full  # (its probe writes a file, which would succeed here: not asked)
        limit["pages"] = 2**31
        stored = _events(50)
        assert pipeline.submit_sync("p", stored) == {}
        assert health.full is False
        with engine.connect() as conn:
            count = conn.exec_driver_sql("SELECT count(*) FROM traces").scalar()
        assert count == 55  # the refused 50 left nothing behind
    finally:
        pipeline.stop()
        engine.dispose()
