"""Project-owned model definitions (custom prices). Built-in models live in the packaged price table."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, delete, select

from lightfuse.store.sql.tables import models


def list_project_models(conn: Connection, project_id: str) -> list[dict[str, Any]]:
    rows = conn.execute(select(models).where(models.c.project_id == project_id)).mappings()
    return [dict(r) for r in rows]


def get_project_model(conn: Connection, project_id: str, model_id: str) -> dict[str, Any] | None:
    row = (
        conn.execute(select(models).where(models.c.project_id == project_id, models.c.id == model_id))
        .mappings()
        .first()
    )
    return dict(row) if row else None


def create_model(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(models.insert().values(**values))


def delete_model(conn: Connection, project_id: str, model_id: str) -> int:
    result = conn.execute(delete(models).where(models.c.project_id == project_id, models.c.id == model_id))
    return result.rowcount or 0


def get_project_model_by_name(conn: Connection, project_id: str, model_name: str) -> dict[str, Any] | None:
    row = (
        conn.execute(
            select(models).where(models.c.project_id == project_id, models.c.model_name == model_name)
        )
        .mappings()
        .first()
    )
    return dict(row) if row else None
