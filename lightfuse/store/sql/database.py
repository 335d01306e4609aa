"""Engine construction and the dialect-specific details that must not leak out of store/."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.pool import NullPool

log = logging.getLogger(__name__)


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def make_engine(url: str, *, sqlite_synchronous: str = "normal", pool_size: int = 8) -> Engine:
    """An engine with JSON through orjson; on SQLite WAL mode so readers never wait for the writer."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1] if "///" in url else ""
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            json_serializer=_json_dumps,
            json_deserializer=orjson.loads,
            connect_args={"check_same_thread": False, "timeout": 30},
            # one connection per thread that asks: the ingestion writer keeps its own, readers share the rest
            pool_size=pool_size,
            max_overflow=pool_size * 2,
        )

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):  # pragma: no cover - exercised by every test
            # Let SQLAlchemy issue BEGIN itself so transactions are explicit (pysqlite's implicit ones are not).
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA synchronous={sqlite_synchronous.upper()}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA cache_size=-65536")
            cur.execute("PRAGMA temp_store=MEMORY")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn):  # pragma: no cover
            # IMMEDIATE would serialise readers behind the writer lock; DEFERRED is right for WAL readers.
            conn.exec_driver_sql("BEGIN")

        return engine
    if url.startswith("postgresql"):
        return create_engine(
            url,
            json_serializer=_json_dumps,
            json_deserializer=lambda v: v if not isinstance(v, (str, bytes)) else orjson.loads(v),
            pool_size=pool_size,
            max_overflow=pool_size * 2,
            pool_pre_ping=True,
        )
    return create_engine(url, json_serializer=_json_dumps, json_deserializer=orjson.loads, poolclass=NullPool)


def insert_for(engine_or_conn) -> Any:
    """The dialect's INSERT construct that supports ON CONFLICT (both SQLite and Postgres have one)."""
    name = engine_or_conn.dialect.name
    if name == "sqlite":
        return sqlite.insert
    if name == "postgresql":
        return postgresql.insert
    raise NotImplementedError(f"unsupported database dialect: {name}")


def is_sqlite(engine_or_conn) -> bool:
    return engine_or_conn.dialect.name == "sqlite"


def writer_connection(engine: Engine):
    """A long-lived connection for the ingestion writer.

    On SQLite it does not checkpoint the WAL itself (``WalCheckpointer`` does that on another thread), so a
    commit only appends to the WAL instead of sometimes copying and syncing megabytes of pages.
    """
    conn = engine.connect()
    if is_sqlite(conn):
        conn.exec_driver_sql("PRAGMA wal_autocheckpoint=0")
        conn.commit()
    return conn


class WalCheckpointer:
    """Checkpoints a SQLite WAL in the background; a no-op on other databases.

    PASSIVE checkpoints never block the writer or readers. The sqlite3 module releases the GIL while SQLite
    works, so the copying runs on the other core instead of inside the writer's commits.
    """

    def __init__(self, engine: Engine, interval: float = 0.5) -> None:
        self._engine = engine
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._engine.dialect.name != "sqlite" or self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="lightfuse-wal-checkpoint", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        with self._engine.connect() as conn:
            while not self._stop.wait(self._interval):
                try:
                    conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
                    conn.commit()
                except Exception:  # pragma: no cover - retried on the next tick
                    log.exception("WAL checkpoint failed")
            # leave a small WAL behind on a clean stop
            try:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
                conn.commit()
            except Exception:  # pragma: no cover
                log.exception("final WAL checkpoint failed")
