"""Comments, annotation queues, queue items and queue assignments, plus the existence checks they need."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, and_, delete, func, select, update

from lightfuse.store.sql.database import insert_for
from lightfuse.store.sql.tables import (
    metadata,
    observations,
    organization_memberships,
    projects,
    score_configs,
    trace_sessions,
    traces,
)
from lightfuse.store.sql.tables_datasets import (
    annotation_queue_assignments,
    annotation_queue_items,
    annotation_queues,
    comments,
)


def _one(conn: Connection, stmt) -> dict[str, Any] | None:
    row = conn.execute(stmt).mappings().first()
    return dict(row) if row else None


def _page(conn: Connection, table, where, limit: int, offset: int, order) -> tuple[list[dict], int]:
    total = conn.execute(select(func.count()).select_from(table).where(where)).scalar_one()
    rows = conn.execute(select(table).where(where).order_by(*order).limit(limit).offset(offset)).mappings()
    return [dict(r) for r in rows], total


# --- existence checks ---------------------------------------------------------------------------------------


def object_exists(conn: Connection, project_id: str, object_type: str, object_id: str) -> bool:
    """Whether a TRACE / OBSERVATION / SESSION / PROMPT with that id exists in the project."""
    if object_type == "TRACE":
        stmt = select(traces.c.id).where(traces.c.project_id == project_id, traces.c.id == object_id)
    elif object_type == "OBSERVATION":
        stmt = select(observations.c.id).where(
            observations.c.project_id == project_id, observations.c.id == object_id
        )
    elif object_type == "SESSION":
        stmt = select(trace_sessions.c.id).where(
            trace_sessions.c.project_id == project_id, trace_sessions.c.id == object_id
        )
    elif object_type == "PROMPT":
        # The prompts table belongs to the prompt store (tables_prompts.py); it is looked up through the shared
        # metadata so that comments do not import another resource's schema module.
        prompts = metadata.tables.get("prompts")
        if prompts is None:
            return False
        stmt = select(prompts.c.id).where(prompts.c.project_id == project_id, prompts.c.id == object_id)
    else:
        return False
    return conn.execute(stmt.limit(1)).first() is not None


def is_org_member(conn: Connection, project_id: str, user_id: str) -> bool:
    stmt = (
        select(organization_memberships.c.user_id)
        .join(projects, projects.c.org_id == organization_memberships.c.org_id)
        .where(projects.c.id == project_id, organization_memberships.c.user_id == user_id)
    )
    return conn.execute(stmt.limit(1)).first() is not None


def existing_score_config_ids(conn: Connection, project_id: str, ids: list[str]) -> set[str]:
    if not ids:
        return set()
    rows = conn.execute(
        select(score_configs.c.id).where(
            score_configs.c.project_id == project_id, score_configs.c.id.in_(ids)
        )
    )
    return {r[0] for r in rows}


# --- comments -----------------------------------------------------------------------------------------------


def create_comment(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(comments.insert().values(**values))


def get_comment(conn: Connection, project_id: str, comment_id: str) -> dict[str, Any] | None:
    return _one(
        conn, select(comments).where(comments.c.project_id == project_id, comments.c.id == comment_id)
    )


def list_comments(
    conn: Connection,
    project_id: str,
    *,
    object_type: str | None,
    object_id: str | None,
    author_user_id: str | None,
    limit: int,
    offset: int,
) -> tuple[list[dict], int]:
    where = [comments.c.project_id == project_id]
    if object_type is not None:
        where.append(comments.c.object_type == object_type)
    if object_id is not None:
        where.append(comments.c.object_id == object_id)
    if author_user_id is not None:
        where.append(comments.c.author_user_id == author_user_id)
    return _page(conn, comments, and_(*where), limit, offset, (comments.c.created_at.desc(), comments.c.id))


# --- annotation queues --------------------------------------------------------------------------------------


def get_queue(conn: Connection, project_id: str, queue_id: str) -> dict[str, Any] | None:
    return _one(
        conn,
        select(annotation_queues).where(
            annotation_queues.c.project_id == project_id, annotation_queues.c.id == queue_id
        ),
    )


def queue_name_taken(conn: Connection, project_id: str, name: str) -> bool:
    stmt = select(annotation_queues.c.id).where(
        annotation_queues.c.project_id == project_id, annotation_queues.c.name == name
    )
    return conn.execute(stmt).first() is not None


def create_queue(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(annotation_queues.insert().values(**values))


def list_queues(conn: Connection, project_id: str, limit: int, offset: int) -> tuple[list[dict], int]:
    return _page(
        conn,
        annotation_queues,
        annotation_queues.c.project_id == project_id,
        limit,
        offset,
        (annotation_queues.c.created_at.desc(), annotation_queues.c.id.desc()),
    )


def create_queue_item(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(annotation_queue_items.insert().values(**values))


def get_queue_item(conn: Connection, project_id: str, queue_id: str, item_id: str) -> dict[str, Any] | None:
    return _one(
        conn,
        select(annotation_queue_items).where(
            annotation_queue_items.c.project_id == project_id,
            annotation_queue_items.c.queue_id == queue_id,
            annotation_queue_items.c.id == item_id,
        ),
    )


def update_queue_item(conn: Connection, item_id: str, values: dict[str, Any]) -> None:
    conn.execute(
        update(annotation_queue_items).where(annotation_queue_items.c.id == item_id).values(**values)
    )


def delete_queue_item(conn: Connection, project_id: str, queue_id: str, item_id: str) -> int:
    result = conn.execute(
        delete(annotation_queue_items).where(
            annotation_queue_items.c.project_id == project_id,
            annotation_queue_items.c.queue_id == queue_id,
            annotation_queue_items.c.id == item_id,
        )
    )
    return result.rowcount


def list_queue_items(
    conn: Connection, project_id: str, queue_id: str, status: str | None, limit: int, offset: int
) -> tuple[list[dict], int]:
    where = [annotation_queue_items.c.project_id == project_id, annotation_queue_items.c.queue_id == queue_id]
    if status is not None:
        where.append(annotation_queue_items.c.status == status)
    return _page(
        conn,
        annotation_queue_items,
        and_(*where),
        limit,
        offset,
        (annotation_queue_items.c.created_at.asc(), annotation_queue_items.c.id),
    )


def assign_user(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(
        insert_for(conn)(annotation_queue_assignments)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["queue_id", "user_id"])
    )


def unassign_user(conn: Connection, project_id: str, queue_id: str, user_id: str) -> None:
    conn.execute(
        delete(annotation_queue_assignments).where(
            annotation_queue_assignments.c.project_id == project_id,
            annotation_queue_assignments.c.queue_id == queue_id,
            annotation_queue_assignments.c.user_id == user_id,
        )
    )
