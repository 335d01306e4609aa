"""Media records (one per distinct content hash per project) and the fields that reference them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, delete, select, union, update

from lightfuse.store.sql.database import insert_for
from lightfuse.store.sql.tables_datasets import dataset_item_media, media, trace_media


def get_media(conn: Connection, project_id: str, media_id: str) -> dict[str, Any] | None:
    row = conn.execute(
        select(media).where(media.c.project_id == project_id, media.c.id == media_id)
    ).mappings()
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
    conn.execute(
        update(media).where(media.c.project_id == project_id, media.c.id == media_id).values(**values)
    )


def link_trace_media(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(insert_for(conn)(trace_media).values(**values).on_conflict_do_nothing())


def link_dataset_item_media(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(insert_for(conn)(dataset_item_media).values(**values).on_conflict_do_nothing())


_CHUNK = 500


def unlink_traces(conn: Connection, project_id: str, trace_ids: Sequence[str]) -> list[str]:
    """Drop the media links of these traces; delete the media records no trace or dataset item references any
    more and return their blob keys (the caller deletes the blobs once the transaction committed)."""
    linked: set[str] = set()
    for i in range(0, len(trace_ids), _CHUNK):
        chunk = list(trace_ids[i : i + _CHUNK])
        where = (trace_media.c.project_id == project_id, trace_media.c.trace_id.in_(chunk))
        linked.update(r[0] for r in conn.execute(select(trace_media.c.media_id).where(*where)))
        conn.execute(delete(trace_media).where(*where))
    keys: list[str] = []
    candidates = sorted(linked)
    for i in range(0, len(candidates), _CHUNK):
        chunk = candidates[i : i + _CHUNK]
        still_used = {
            r[0]
            for r in conn.execute(
                union(
                    select(trace_media.c.media_id).where(
                        trace_media.c.project_id == project_id, trace_media.c.media_id.in_(chunk)
                    ),
                    select(dataset_item_media.c.media_id).where(
                        dataset_item_media.c.project_id == project_id,
                        dataset_item_media.c.media_id.in_(chunk),
                    ),
                )
            )
        }
        orphans = [m for m in chunk if m not in still_used]
        if not orphans:
            continue
        where = (media.c.project_id == project_id, media.c.id.in_(orphans))
        keys.extend(r[0] for r in conn.execute(select(media.c.bucket_path).where(*where)))
        conn.execute(delete(media).where(*where))
    return keys
