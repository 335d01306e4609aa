"""Removing a deleted project's rows for good, a bounded chunk per transaction.

A project's rows are every row of every table with a ``project_id`` column (``project_tables``): the list is
read from the schema, so a new project-scoped table is purged without being named here, and
``tests/store/test_project_purge.py`` fails if a table is added that neither has a ``project_id`` column nor is
listed in ``GLOBAL_TABLES``. Tables are emptied children first (reverse foreign-key order), so no delete
cascades into an unbounded one, and the ``projects`` row goes last: until then the project stays soft-deleted
and a later run resumes where an interrupted one stopped.

Unlike the other store modules these functions take the engine and own their transactions: each chunk is its
own short write transaction, so a large project never holds SQLite's write lock (and the ingestion writer) for
long.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection, Engine, Table, delete, exists, select, tuple_

from lightfuse.store.sql import (  # noqa: F401 - registers their tables
    llm_connections,
    tables_admin,
    tables_automations,
    tables_datasets,
    tables_integrations,
    tables_prompts,
)
from lightfuse.store.sql.tables import metadata, projects
from lightfuse.store.sql.tables_datasets import media
from lightfuse.store.sql.transactions import write_transaction

# Tables that hold no project's rows; every other table must have a project_id column.
GLOBAL_TABLES = frozenset(
    {
        "organizations",
        "users",
        "organization_memberships",
        "projects",
        "web_sessions",
        "auth_throttle",
        # the audit log outlives a project (its rows name it in resource_project_id); reset tokens are per user
        "audit_log",
        "password_reset_tokens",
        # identities linked to users and pending SSO sign-ins belong to users, not projects
        "sso_accounts",
        "sso_login_states",
    }
)

CHUNK_ROWS = 1000
# each media row costs a blob-store call (an HTTP request on S3)
MEDIA_CHUNK_ROWS = 100


def project_tables() -> list[Table]:
    """Every table holding a project's rows, children before parents."""
    return [t for t in reversed(metadata.sorted_tables) if "project_id" in t.c]


def list_deleted_projects(conn: Connection, deleted_before: int) -> list[str]:
    """Soft-deleted projects whose deletion is older than ``deleted_before`` (epoch ms), oldest first."""
    stmt = (
        select(projects.c.id)
        .where(projects.c.deleted_at.is_not(None), projects.c.deleted_at <= deleted_before)
        .order_by(projects.c.deleted_at, projects.c.id)
    )
    return [r[0] for r in conn.execute(stmt)]


def purge_project(
    engine: Engine,
    project_id: str,
    *,
    delete_blobs: Callable[[list[str]], None],
    should_stop: Callable[[], bool] = lambda: False,
    chunk_rows: int = CHUNK_ROWS,
    media_chunk_rows: int = MEDIA_CHUNK_ROWS,
) -> bool:
    """Delete every row of the project, then the project row; True when the project is gone.

    ``delete_blobs`` receives the blob keys of a chunk of media records before those records are deleted and
    must raise if it could not delete them: the records then stay, naming the bytes for the next attempt, so
    an interrupted or failed purge never strands a blob. ``should_stop`` is asked before every chunk; False is
    returned when it said stop, or when rows arrived while the purge ran (an ingestion batch accepted just
    before the keys were revoked) - a later call finishes the job. Idempotent.
    """
    tables = project_tables()
    for table in tables:
        while True:
            if should_stop():
                return False
            if table is media:
                deleted = _delete_media_chunk(engine, project_id, media_chunk_rows, delete_blobs)
            else:
                deleted = _delete_chunk(engine, table, project_id, chunk_rows)
            if not deleted:
                break
    with write_transaction(engine) as conn:
        # the write lock is held: nothing can be added between this check and the delete
        for table in tables:
            if conn.execute(select(exists().where(table.c.project_id == project_id))).scalar():
                return False
        conn.execute(delete(projects).where(projects.c.id == project_id))
    return True


def _delete_chunk(engine: Engine, table: Table, project_id: str, limit: int) -> int:
    key = list(table.primary_key.columns)
    assert key, f"{table.name} needs a primary key to be purged in chunks"
    chunk = table.alias("chunk")  # an alias: the subquery must not correlate with the outer DELETE
    picked = select(*(chunk.c[c.name] for c in key)).where(chunk.c.project_id == project_id).limit(limit)
    target = key[0] if len(key) == 1 else tuple_(*key)
    with write_transaction(engine) as conn:
        return conn.execute(
            delete(table).where(table.c.project_id == project_id, target.in_(picked))
        ).rowcount


def _delete_media_chunk(
    engine: Engine, project_id: str, limit: int, delete_blobs: Callable[[list[str]], None]
) -> int:
    with engine.connect() as conn:
        rows = conn.execute(
            select(media.c.id, media.c.bucket_path).where(media.c.project_id == project_id).limit(limit)
        ).all()
    if not rows:
        return 0
    # outside any transaction: blob calls may be slow, and the project is no longer readable by anyone
    delete_blobs([r.bucket_path for r in rows])
    with write_transaction(engine) as conn:
        conn.execute(
            delete(media).where(media.c.project_id == project_id, media.c.id.in_([r.id for r in rows]))
        )
    return len(rows)
