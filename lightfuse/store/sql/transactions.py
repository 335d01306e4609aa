"""Write transactions that read before they write.

On SQLite (WAL) a transaction that has read cannot be upgraded to a write once another connection (the
ingestion writer, say) has committed in between: the upgrade fails at once with "database is locked", the busy
timeout does not apply. Taking the write lock first avoids that: the transaction begins IMMEDIATE
(``database.begin_immediate``), so SQLite acquires the lock before it reads anything, waiting for it under the
busy timeout - as the ingestion writer's own transactions do. Postgres needs nothing: its readers never block a
later write of the same transaction.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from sqlalchemy import Connection, Engine

from lightfuse.store.capacity import disk_full_as_store_full
from lightfuse.store.sql.database import begin_immediate


@contextlib.contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    with engine.connect() as conn:
        begin_immediate(conn)
        try:
            # a write that fails for lack of space surfaces as StoreFull, which the API answers with 503
            with disk_full_as_store_full(), conn.begin():
                yield conn
        finally:
            begin_immediate(conn, enabled=False)  # the flag lives on the pooled connection
