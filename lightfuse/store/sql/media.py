"""Media records (one per distinct content hash per project) and the fields that reference them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select, update

from lightfuse.store.sql.database import insert_for
from lightfuse.store.sql.tables_datasets import dataset_item_media, media, trace_media


def get_media(conn: Connection, project_id: str, media_id: str) -> dict[str, Any] | None:
    row = conn.execute(select(media).where(media.c.project_id == project_id, media.c.id == media_id)).mappings()
    first = row.first()
    return dict(first) if first else None


def get_media_many(conn: Connection, project_id: str, media_ids: list[str]) -> dict[str, dict[str, Any]]:
    if not media_ids:
        return {}
    rows = conn.execute(select(media).where(media.c.project_id == project_id, media.c.id.in_(media_ids)))
    return {r["id"]: dict(r) for r in rows.mappings()}


def create_media_if_absent(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(
        insert_for(conn)(media).values(**values).on_conflict_do_nothing(index_elements=["project_id", "id"])
    )


def update_media(conn: Connection, project_id: str, media_id: str, values: dict[str, Any]) -> None:
    conn.execute(update(media).where(media.c.project_id == project_id, media.c.id == media_id).values(**values))


def link_trace_media(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(insert_for(conn)(trace_media).values(**values).on_conflict_do_nothing())


def link_dataset_item_media(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(insert_for(conn)(dataset_item_media).values(**values).on_conflict_do_nothing())
