"""Write transactions that read before they write.

On SQLite (WAL) a transaction that has read cannot be upgraded to a write once another connection (the
ingestion writer, say) has committed in between: the upgrade fails at once with "database is locked", the busy
timeout does not apply. Taking the write lock first avoids that: the no-op UPDATE below is a write statement,
so SQLite acquires the lock before the transaction reads anything, and waits for it under the busy timeout.
Postgres needs nothing: its readers never block a later write of the same transaction.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from sqlalchemy import Connection, Engine


def take_write_lock(conn: Connection) -> None:
    """Call first in a transaction that will read before it writes (see above)."""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("UPDATE datasets SET id = id WHERE 0")


@contextlib.contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    with engine.begin() as conn:
        take_write_lock(conn)
        yield conn
