"""A store that cannot write for lack of space: detected here, raised as one typed error, probed for recovery.

SQLite says "database or disk is full" (SQLITE_FULL), Postgres raises DiskFull (SQLSTATE 53100), files fail with
ENOSPC or EDQUOT. Callers above the store see ``StoreFull`` for all of them and answer 503 + Retry-After: the
write was rolled back, nothing of it was kept, and the same request succeeds once space comes back.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import Engine

_SPACE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
_PG_DISK_FULL = "53100"
# bytes the probe writes and syncs: enough to need fresh blocks on the file system, small enough to be harmless
_PROBE_BYTES = 256 * 1024


class StoreFull(Exception):
    """The store cannot write for lack of space; the write was rolled back and may be retried later."""


def is_disk_full(exc: BaseException | None) -> bool:
    """Whether ``exc`` (or an exception it wraps) says the disk or the database is full."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, StoreFull):
            return True
        if isinstance(exc, sqlite3.Error):
            code = getattr(exc, "sqlite_errorcode", None)
            if (code is not None and code & 0xFF == sqlite3.SQLITE_FULL) or "database or disk is full" in str(
                exc
            ):
                return True
        if isinstance(exc, OSError) and exc.errno in _SPACE_ERRNOS:
            return True
        if (
            getattr(exc, "sqlstate", None) == _PG_DISK_FULL
        ):  # psycopg's DiskFull, without importing the driver
            return True
        # SQLAlchemy keeps the driver's exception in .orig; everything else chains through __cause__/__context__
        exc = getattr(exc, "orig", None) or exc.__cause__ or exc.__context__
    return False


@contextlib.contextmanager
def disk_full_as_store_full() -> Iterator[None]:
    """Re-raise a lack-of-space error from the block as ``StoreFull``; other errors pass unchanged."""
    try:
        yield
    except StoreFull:
        raise
    except Exception as exc:
        if is_disk_full(exc):
            raise StoreFull(str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from exc
        raise


def probe_writable(engine: Engine, data_dir: Path | None = None) -> bool:
    """Whether the store can write again: a cheap real write where its bytes live.

    SQLite and the local blob store: write, sync and delete a small file in the data directory (a database
    write there would need the write lock, which the ingestion writer may hold). Postgres: a committed
    transaction that creates and fills a temporary table, which needs catalog and WAL space on its server.
    """
    if engine.dialect.name == "sqlite":
        database = engine.url.database
        directory = Path(database).parent if database and database != ":memory:" else data_dir
        return _probe_directory(directory) if directory is not None else True
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TEMPORARY TABLE lightfuse_write_probe (x text) ON COMMIT DROP")
            conn.exec_driver_sql(
                "INSERT INTO lightfuse_write_probe SELECT repeat('x', 1000) FROM generate_series(1, 256)"
            )
    except Exception as exc:
        if is_disk_full(exc):
            return False
        raise
    return True


def _probe_directory(directory: Path) -> bool:
    try:
        fd, name = tempfile.mkstemp(dir=directory, prefix=".write-probe-")
    except OSError as exc:
        if is_disk_full(exc):
            return False
        raise
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(b"\0" * _PROBE_BYTES)
            out.flush()
            os.fsync(out.fileno())
        return True
    except OSError as exc:
        if is_disk_full(exc):
            return False
        raise
    finally:
        Path(name).unlink(missing_ok=True)
