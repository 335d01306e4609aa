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

from lightfuse.runtime import name_os_thread
from lightfuse.store.capacity import is_disk_full
from lightfuse.store.private_files import make_private_dirs, make_private_file, narrow_to_owner

log = logging.getLogger(__name__)

# a failed statement's message leaves out its bound values: they are user data and key hashes, and the message
# reaches the server log (api/common.py CatchAll logs every unexpected error)
HIDE_PARAMETERS = True


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


class UnstorableText(ValueError):
    """A statement's text parameter holds a NUL character, which Postgres text and JSONB cannot hold or match.

    Raised in place of the driver's DataError, so that the HTTP layer answers it as bad input (400) rather than
    as a server fault: every id, name and filter value of a request can reach a statement. SQLite takes NUL.
    """


def _nul_text_is_bad_input(context) -> Exception | None:
    original = context.original_exception
    # psycopg refuses the parameter before sending it ("... cannot contain NUL (0x00) bytes"); JSONB refuses
    # the \u0000 escape server-side ("unsupported Unicode escape sequence")
    text = str(original)
    if "NUL (0x00)" in text or "unsupported Unicode escape sequence" in text:
        return UnstorableText("Text must not contain NUL (\\u0000) characters")
    return None


def _json_loads(value: Any) -> Any:
    """A JSON column's stored value -> Python. The driver may hand over an already decoded value: psycopg
    decodes JSONB itself, and SQLite gives the JSON text of a bare number back as an int or a float (a column
    declared JSON has NUMERIC affinity there, so "5" is stored as the integer 5)."""
    return orjson.loads(value) if isinstance(value, (str, bytes)) else value


def _bind_none_as_null(value: None) -> None:
    return None


def _register_fast_adapters(dbapi: Any) -> None:
    """Make the sqlite3 module bind None and bools through registered adapters: the same values, a fraction of
    the cost.

    CPython's sqlite3 (3.11) sends every parameter that is not exactly int/float/str/bytearray through its
    adapter protocol: a failed registry lookup, then two failed attribute lookups (``__adapt__``,
    ``__conform__``), and only then does it bind the value as it is - NULL for None, the integer for a bool.
    That was ~0.3 us per None (the ingestion writer binds about a dozen per observation row) and ~0.4 us per
    bool; a registered adapter is found by the first lookup. The registry is the sqlite3 module's
    (process-wide), and these adapters give what the module bound anyway, so no connection's behaviour changes.
    """
    dbapi.register_adapter(type(None), _bind_none_as_null)
    dbapi.register_adapter(bool, int)


def make_engine(
    url: str,
    *,
    sqlite_synchronous: str = "normal",
    pool_size: int = 8,
    sqlite_memory_limit_mib: int | None = None,
) -> Engine:
    """An engine with JSON through orjson; on SQLite WAL mode so readers never wait for the writer.

    ``sqlite_memory_limit_mib``: SQLite's soft heap limit, process-wide: past it SQLite gives back page-cache
    pages of every connection instead of letting each grow to its own 64 MiB cache (the writer's, the
    checkpointer's and each reader's would otherwise add up under load; bench/memory_bench.py)."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1] if "///" in url else ""
        if path and path != ":memory:":
            # SQLite gives the -wal/-shm files the database file's mode: creating it 0600 covers all three
            make_private_dirs(Path(path).parent)
            make_private_file(Path(path))
            for suffix in ("", "-wal", "-shm"):
                narrow_to_owner(Path(path + suffix))
        engine = create_engine(
            url,
            json_serializer=_json_dumps,
            json_deserializer=_json_loads,
            hide_parameters=HIDE_PARAMETERS,
            connect_args={"check_same_thread": False, "timeout": 30},
            # one connection per thread that asks: the ingestion writer keeps its own, readers share the rest
            pool_size=pool_size,
            max_overflow=pool_size * 2,
        )
        _register_fast_adapters(engine.dialect.dbapi)

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
            if sqlite_memory_limit_mib:
                cur.execute(f"PRAGMA soft_heap_limit={int(sqlite_memory_limit_mib) * 1024 * 1024}")
            cur.execute("PRAGMA temp_store=MEMORY")
            # a WAL rewound after a load peak is cut back to this size instead of keeping its peak size on disk
            cur.execute(f"PRAGMA journal_size_limit={64 * 1024 * 1024}")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn):  # pragma: no cover
            # IMMEDIATE would serialise readers behind the writer lock; DEFERRED is right for WAL readers.
            # Connections whose transactions read before they write opt in to IMMEDIATE (begin_immediate).
            conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.info.get(_IMMEDIATE) else "BEGIN")

        return engine
    if url.startswith("postgresql"):
        engine = create_engine(
            url,
            json_serializer=_json_dumps,
            json_deserializer=_json_loads,
            hide_parameters=HIDE_PARAMETERS,
            pool_size=pool_size,
            max_overflow=pool_size * 2,
            pool_pre_ping=True,
        )
        event.listen(engine, "handle_error", _nul_text_is_bad_input)
        return engine
    return create_engine(
        url,
        json_serializer=_json_dumps,
        json_deserializer=_json_loads,
        poolclass=NullPool,
        hide_parameters=HIDE_PARAMETERS,
    )


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


_IMMEDIATE = "lightfuse_begin_immediate"


def begin_immediate(conn: Any, enabled: bool = True) -> None:
    """On SQLite, make this connection's transactions begin IMMEDIATE, i.e. with the write lock, waited for
    under the busy timeout. For transactions that read before they write: a deferred transaction that has read
    cannot be upgraded once another connection committed in between (it fails at once, "database is locked").
    The flag stays with the pooled connection until ``enabled=False``. Postgres needs nothing."""
    if is_sqlite(conn):
        if enabled:
            conn.info[_IMMEDIATE] = True
        else:
            conn.info.pop(_IMMEDIATE, None)


def writer_connection(engine: Engine):
    """A long-lived connection for the ingestion writer.

    On SQLite it does not checkpoint the WAL itself (``WalCheckpointer`` does that on another thread), so a
    commit only appends to the WAL instead of sometimes copying and syncing megabytes of pages.
    """
    conn = engine.connect()
    if is_sqlite(conn):
        conn.exec_driver_sql("PRAGMA wal_autocheckpoint=0")
        conn.commit()
    begin_immediate(conn)  # it reads stored rows before writing them
    return conn


class WalCheckpointer:
    """Checkpoints a SQLite WAL in the background and keeps it bounded; a no-op on other databases.

    PASSIVE checkpoints never block the writer or readers, and the sqlite3 module releases the GIL while SQLite
    copies, so that work runs on the other core instead of inside the writer's commits. But under sustained
    ingestion a PASSIVE checkpoint never catches up with the writer, and SQLite only rewinds the WAL to its
    start once every frame has been copied: the file grew by ~110 MB/s without limit under OTLP load.
    So once the WAL holds more than ``max_wal_bytes``, the checkpointer catches up as far as it can and raises
    ``truncate_wanted``; the ingestion writer then calls ``truncate`` between two commits (under load it holds
    the write lock almost all the time, so this thread would rarely get it). That copies the short rest,
    syncs, and rewinds the WAL, holding ingestion back for it (tens of ms, measured up to ~100 ms); it waits at
    most ``truncate_wait_ms`` for readers of older snapshots, and if they take longer the next round asks
    again. The 1 GiB default keeps those pauses rare (one per ~10 s of full OTLP load) and out of the p99.
    """

    def __init__(
        self,
        engine: Engine,
        interval: float = 0.5,
        *,
        max_wal_bytes: int = 1024 * 1024 * 1024,
        truncate_wait_ms: int = 250,
    ) -> None:
        self._engine = engine
        self._interval = interval
        self._max_wal_bytes = max_wal_bytes
        self._truncate_wait_ms = truncate_wait_ms
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.truncate_wanted = threading.Event()

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
        name_os_thread("lf-checkpoint")
        with self._engine.connect() as conn:
            page_size = conn.exec_driver_sql("PRAGMA page_size").scalar() or 4096
            conn.commit()
            max_frames = max(1, self._max_wal_bytes // page_size)
            out_of_space = False  # said once per episode: a full disk would otherwise log twice a second
            while not self._stop.wait(self._interval):
                try:
                    self.tick(conn, max_frames)
                    out_of_space = False
                except Exception as exc:  # pragma: no cover - retried on the next tick
                    if not is_disk_full(exc):
                        log.exception("WAL checkpoint failed")
                    elif not out_of_space:
                        out_of_space = True
                        log.warning("WAL checkpoint failed, the disk is full; retried until space comes back")
            # leave a small WAL behind on a clean stop
            try:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
                conn.commit()
            except Exception:  # pragma: no cover
                log.exception("final WAL checkpoint failed")

    def tick(self, conn: Any, max_frames: int) -> None:
        """One round: copy what the WAL holds into the database; ask for a restart once it holds too much."""
        if self.truncate_wanted.is_set():
            return  # the writer is about to restart the WAL; a checkpoint running now would fail it
        if _passive_checkpoint(conn) >= max_frames:
            # Catch up first: each round copies what arrived during the one before, a shorter tail each time,
            # so the writer's pause (copying the rest and syncing it) stays short.
            for _ in range(3):
                _passive_checkpoint(conn)
            self.truncate_wanted.set()

    def truncate(self, conn: Any) -> bool:
        """Copy the rest of the WAL into the database and rewind it to its start; call between transactions, on
        the writer's connection. Returns whether it got through: readers of older snapshots may hold it up past
        the wait, and then the checkpointer asks again after its next round."""
        # straight on the driver connection: through SQLAlchemy the pragmas would open a transaction (BEGIN
        # IMMEDIATE on the writer's connection) and the checkpoint cannot run inside one
        cursor = conn.connection.driver_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout={int(self._truncate_wait_ms)}")
            try:
                busy = cursor.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()[0]
            finally:
                cursor.execute("PRAGMA busy_timeout=30000")
        finally:
            cursor.close()
            self.truncate_wanted.clear()
        return not busy


def _passive_checkpoint(conn: Any) -> int:
    """A PASSIVE checkpoint; returns the number of frames in the WAL."""
    wal_frames = conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").one()[1]
    conn.commit()
    return wal_frames


# Postgres's "retry the transaction" errors: deadlock detected, serialization failure
_RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})


def is_retryable_conflict(exc: BaseException) -> bool:
    """Whether ``exc`` aborted a transaction only because a concurrent one conflicted with it (two writers of
    one Postgres database, say): running the transaction again is the remedy, not reporting an error."""
    orig = getattr(exc, "orig", None) or exc  # SQLAlchemy wraps the driver's error; raw cursors do not
    return getattr(orig, "sqlstate", None) in _RETRYABLE_SQLSTATES


# pg_advisory_xact_lock key of the start-up steps (migrations, LANGFUSE_INIT_* provisioning): a constant that
# nothing else locks (its bytes spell "lf-setup"; the first is below 0x80, so it fits a signed bigint)
_SETUP_LOCK_KEY = int.from_bytes(b"lf-setup", "big")


def serialise_setup(conn: Any) -> None:
    """Hold, until ``conn``'s transaction ends, the lock that start-up steps take on Postgres: server processes
    started together on one database (replicas) then migrate and provision one after the other, each seeing the
    other's result, instead of both creating the same tables and rows. SQLite needs nothing (its
    transactions that write are serialised, and it serves one process)."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_SETUP_LOCK_KEY})")
