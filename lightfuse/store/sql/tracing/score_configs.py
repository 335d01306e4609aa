"""Score configs (per project)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, func, select, update

from lightfuse.store.sql.tables import score_configs


def get_score_config(conn: Connection, project_id: str, config_id: str) -> dict[str, Any] | None:
    row = (
        conn.execute(
            select(score_configs).where(
                score_configs.c.project_id == project_id, score_configs.c.id == config_id
            )
        )
        .mappings()
        .first()
    )
    return dict(row) if row else None


def create_score_config(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(score_configs.insert().values(**values))


def update_score_config(conn: Connection, project_id: str, config_id: str, values: dict[str, Any]) -> None:
    conn.execute(
        update(score_configs)
        .where(score_configs.c.project_id == project_id, score_configs.c.id == config_id)
        .values(**values)
    )


def list_score_configs(conn: Connection, project_id: str, limit: int, offset: int) -> tuple[list[dict], int]:
    where = score_configs.c.project_id == project_id
    total = conn.execute(select(func.count()).select_from(score_configs).where(where)).scalar_one()
    rows = conn.execute(
        select(score_configs)
        .where(where)
        .order_by(score_configs.c.created_at.desc(), score_configs.c.id)
        .limit(limit)
        .offset(offset)
    ).mappings()
    return [dict(r) for r in rows], total
