"""LLM connections (migration 0011): one row per (project, provider name), secrets stored sealed.

``secret_key`` and ``extra_headers`` hold AES-256-GCM ciphertext text (services/common/secrets_box.py); the
store never sees a plaintext secret. ``extra_header_keys`` keeps the header names readable for listings.
Functions take an open Connection.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    ForeignKey,
    String,
    Table,
    Text,
    UniqueConstraint,
    delete,
    func,
    select,
)

from lightfuse.store.sql.tables import Json, metadata

llm_connections = Table(
    "llm_connections",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("project_id", String(64), ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("provider", String(255), nullable=False),
    Column("adapter", String(32), nullable=False),
    Column("secret_key", Text, nullable=False),
    Column("display_secret_key", String(64), nullable=False),
    Column("base_url", String(2048), nullable=True),
    Column("custom_models", Json, nullable=False),
    Column("with_default_models", Boolean, nullable=False),
    Column("extra_headers", Text, nullable=True),
    Column("extra_header_keys", Json, nullable=False),
    Column("config", Json, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    UniqueConstraint("project_id", "provider"),
)


def list_connections(conn: Connection, project_id: str, limit: int, offset: int) -> tuple[list[dict], int]:
    where = llm_connections.c.project_id == project_id
    total = conn.execute(select(func.count()).select_from(llm_connections).where(where)).scalar_one()
    rows = conn.execute(
        select(llm_connections)
        .where(where)
        .order_by(llm_connections.c.provider, llm_connections.c.id)
        .limit(limit)
        .offset(offset)
    ).mappings()
    return [dict(r) for r in rows], int(total)


def get_by_provider(conn: Connection, project_id: str, provider: str) -> dict | None:
    row = (
        conn.execute(
            select(llm_connections).where(
                llm_connections.c.project_id == project_id, llm_connections.c.provider == provider
            )
        )
        .mappings()
        .first()
    )
    return dict(row) if row else None


def get_by_id(conn: Connection, project_id: str, connection_id: str) -> dict | None:
    row = (
        conn.execute(
            select(llm_connections).where(
                llm_connections.c.project_id == project_id, llm_connections.c.id == connection_id
            )
        )
        .mappings()
        .first()
    )
    return dict(row) if row else None


def insert(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(llm_connections.insert().values(**values))


def update(conn: Connection, connection_id: str, values: dict[str, Any]) -> None:
    conn.execute(llm_connections.update().where(llm_connections.c.id == connection_id).values(**values))


def delete_connection(conn: Connection, project_id: str, connection_id: str) -> bool:
    stmt = delete(llm_connections).where(
        llm_connections.c.project_id == project_id, llm_connections.c.id == connection_id
    )
    return conn.execute(stmt).rowcount == 1
