"""What the prompt pages read beyond the prompts API: names for the folder list, protected labels and the
authors of versions. Functions take an open Connection; the caller owns the transaction. (The metrics of the
generations linked to a prompt are trace data: ``sql/tracing/prompt_metrics.py``.)
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, and_, delete, func, select

from lightfuse.store.sql.database import insert_for
from lightfuse.store.sql.filters import array_condition
from lightfuse.store.sql.tables import users
from lightfuse.store.sql.tables_prompts import prompt_protected_labels, prompts

# --- protected labels ---------------------------------------------------------------------------------------


def list_protected_labels(conn: Connection, project_id: str) -> list[str]:
    stmt = (
        select(prompt_protected_labels.c.label)
        .where(prompt_protected_labels.c.project_id == project_id)
        .order_by(prompt_protected_labels.c.label)
    )
    return list(conn.execute(stmt).scalars())


def add_protected_label(conn: Connection, project_id: str, label: str, now: int) -> None:
    stmt = insert_for(conn)(prompt_protected_labels).values(
        project_id=project_id, label=label, created_at=now
    )
    conn.execute(stmt.on_conflict_do_nothing())


def remove_protected_label(conn: Connection, project_id: str, label: str) -> None:
    conn.execute(
        delete(prompt_protected_labels).where(
            prompt_protected_labels.c.project_id == project_id, prompt_protected_labels.c.label == label
        )
    )


# --- names and authors --------------------------------------------------------------------------------------


def list_names(conn: Connection, project_id: str, search: str | None, tag: str | None) -> list[str]:
    """Distinct prompt names (ordered), optionally containing ``search`` (case-insensitive) or tagged ``tag``."""
    where = [prompts.c.project_id == project_id]
    if search:
        pattern = "%" + search.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        where.append(func.lower(prompts.c.name).like(pattern, escape="\\"))
    if tag:
        where.append(array_condition(prompts.c.tags, "any of", [tag], conn.dialect.name))
    stmt = select(prompts.c.name).where(*where).distinct().order_by(prompts.c.name)
    return list(conn.execute(stmt).scalars())


def list_tags(conn: Connection, project_id: str) -> list[str]:
    """Every tag used in the project. Tags belong to the name (every version carries the same list), so only
    each name's newest version is read: the group-by walks the (project_id, name, version) index."""
    newest = (
        select(prompts.c.name, func.max(prompts.c.version).label("version"))
        .where(prompts.c.project_id == project_id)
        .group_by(prompts.c.name)
        .subquery("newest")
    )
    stmt = select(prompts.c.tags).join(
        newest,
        and_(
            prompts.c.project_id == project_id,
            prompts.c.name == newest.c.name,
            prompts.c.version == newest.c.version,
        ),
    )
    return sorted({t for tags in conn.execute(stmt).scalars() for t in (tags or [])})


def version_summaries(conn: Connection, project_id: str, names: list[str]) -> list[dict[str, Any]]:
    """name, version, type, labels, tags, updated_at of every version of ``names`` (oldest first): what the
    list shows, without content and config."""
    if not names:
        return []
    c = prompts.c
    stmt = (
        select(c.name, c.version, c.type, c.labels, c.tags, c.updated_at)
        .where(c.project_id == project_id, c.name.in_(names))
        .order_by(c.name, c.version)
    )
    return [dict(r) for r in conn.execute(stmt).mappings()]


def user_labels(conn: Connection, user_ids: list[str]) -> dict[str, str]:
    """user id -> name (or email) for the ids that are users; ``API`` and unknown ids are left out."""
    if not user_ids:
        return {}
    stmt = select(users.c.id, users.c.name, users.c.email).where(users.c.id.in_(sorted(set(user_ids))))
    return {r.id: r.name or r.email for r in conn.execute(stmt)}
