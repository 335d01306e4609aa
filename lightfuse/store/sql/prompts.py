"""Prompt versions, their dependency edges and the per-project prompt revision. Functions take an open
Connection; the caller owns the transaction.

Write transactions must call :func:`bump_revision` first: it is the statement that takes the per-project lock
(see tables_prompts.py), so everything read after it in the same transaction is current.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, delete, func, select, update

from lightfuse.store.sql.database import insert_for
from lightfuse.store.sql.filters import (
    Condition,
    FilterColumn,
    array_condition,
    columns_used,
    compile_filters,
)
from lightfuse.store.sql.tables_prompts import prompt_dependencies, prompt_revisions, prompts


@dataclass(frozen=True)
class PromptListQuery:
    """Filters of GET /v2/prompts; they select versions before the versions are grouped by name."""

    name: str | None = None
    label: str | None = None
    tag: str | None = None
    version: int | None = None
    updated_from: int | None = None  # inclusive, epoch ms
    updated_to: int | None = None  # exclusive, epoch ms
    # the structured ``filter`` parameter; when given, it replaces every field above
    conditions: tuple[Condition, ...] | None = None


FILTER_COLUMNS = {
    c.name: c
    for c in (
        FilterColumn("id", "string", prompts.c.id),
        FilterColumn("name", "string", prompts.c.name),
        FilterColumn("type", "string", prompts.c.type),
        FilterColumn("version", "number", prompts.c.version),
        FilterColumn("createdAt", "datetime", prompts.c.created_at),
        FilterColumn("updatedAt", "datetime", prompts.c.updated_at),
        FilterColumn("labels", "array", prompts.c.labels),
        FilterColumn("tags", "array", prompts.c.tags),
        FilterColumn("config", "object", prompts.c.config, types=("stringObject",)),
    )
}


def _rows(conn: Connection, stmt) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute(stmt).mappings()]


def _has_label(conn: Connection, label: str):
    return array_condition(prompts.c.labels, "any of", [label], conn.dialect.name)


# --- the per-project revision -------------------------------------------------------------------------------


def bump_revision(conn: Connection, project_id: str) -> int:
    """+1 on the project's prompt revision (created at 1); locks the row until the transaction ends."""
    insert = insert_for(conn)
    stmt = insert(prompt_revisions).values(project_id=project_id, revision=1)
    stmt = stmt.on_conflict_do_update(
        index_elements=[prompt_revisions.c.project_id],
        set_={"revision": prompt_revisions.c.revision + 1},
    ).returning(prompt_revisions.c.revision)
    return int(conn.execute(stmt).scalar_one())


def get_revision(conn: Connection, project_id: str) -> int:
    value = conn.execute(
        select(prompt_revisions.c.revision).where(prompt_revisions.c.project_id == project_id)
    ).scalar()
    return int(value or 0)


# --- versions -----------------------------------------------------------------------------------------------


def get_prompt(
    conn: Connection, project_id: str, name: str, *, version: int | None = None, label: str | None = None
) -> dict[str, Any] | None:
    """One version by number or by label (exactly one of the two)."""
    stmt = select(prompts).where(prompts.c.project_id == project_id, prompts.c.name == name)
    if version is not None:
        stmt = stmt.where(prompts.c.version == version)
    else:
        # several rows can only match while a label move is half applied inside a transaction
        stmt = stmt.where(_has_label(conn, label or "")).order_by(prompts.c.version.desc()).limit(1)
    row = conn.execute(stmt).mappings().first()
    return dict(row) if row else None


def prompt_ids(
    conn: Connection, project_id: str, pairs: Iterable[tuple[str, int]]
) -> dict[tuple[str, int], str]:
    """(name, version) -> prompt id for the pairs that exist; one query per 200 names."""
    wanted = set(pairs)
    names = sorted({name for name, _ in wanted})
    found: dict[tuple[str, int], str] = {}
    for start in range(0, len(names), 200):
        stmt = select(prompts.c.name, prompts.c.version, prompts.c.id).where(
            prompts.c.project_id == project_id, prompts.c.name.in_(names[start : start + 200])
        )
        for name, version, prompt_id in conn.execute(stmt):
            if (name, version) in wanted:
                found[(name, version)] = prompt_id
    return found


def list_versions(conn: Connection, project_id: str, name: str) -> list[dict[str, Any]]:
    """Every version of a name, newest first."""
    return _rows(
        conn,
        select(prompts)
        .where(prompts.c.project_id == project_id, prompts.c.name == name)
        .order_by(prompts.c.version.desc()),
    )


def create_prompt(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(prompts.insert().values(**values))


def update_prompt(conn: Connection, prompt_id: str, values: dict[str, Any]) -> None:
    conn.execute(update(prompts).where(prompts.c.id == prompt_id).values(**values))


def set_tags(conn: Connection, project_id: str, name: str, tags: list[str], now: int) -> None:
    """Tags belong to the name: every version carries the same list."""
    conn.execute(
        update(prompts)
        .where(prompts.c.project_id == project_id, prompts.c.name == name)
        .values(tags=tags, updated_at=now)
    )


def delete_prompts(conn: Connection, project_id: str, prompt_ids: Sequence[str]) -> None:
    if not prompt_ids:
        return
    ids = list(prompt_ids)
    # explicit, so it does not depend on SQLite's foreign_keys pragma being on for this connection
    conn.execute(delete(prompt_dependencies).where(prompt_dependencies.c.parent_id.in_(ids)))
    conn.execute(delete(prompts).where(prompts.c.project_id == project_id, prompts.c.id.in_(ids)))


# --- dependency edges ---------------------------------------------------------------------------------------


def create_dependencies(
    conn: Connection, project_id: str, parent_id: str, deps: Iterable[dict[str, Any]]
) -> None:
    rows = [
        {
            "project_id": project_id,
            "parent_id": parent_id,
            "child_name": d["name"],
            "child_version": d.get("version"),
            "child_label": d.get("label"),
        }
        for d in deps
    ]
    if rows:
        conn.execute(prompt_dependencies.insert(), rows)


def list_dependents(conn: Connection, project_id: str, child_names: Iterable[str]) -> list[dict[str, Any]]:
    """Versions whose content references any of ``child_names``, with the reference that matched."""
    names = sorted(set(child_names))
    if not names:
        return []
    stmt = (
        select(
            prompts,
            prompt_dependencies.c.child_name,
            prompt_dependencies.c.child_version,
            prompt_dependencies.c.child_label,
        )
        .join(prompt_dependencies, prompt_dependencies.c.parent_id == prompts.c.id)
        .where(prompt_dependencies.c.project_id == project_id, prompt_dependencies.c.child_name.in_(names))
        .order_by(prompts.c.name, prompts.c.version)
    )
    return _rows(conn, stmt)


# --- listing ------------------------------------------------------------------------------------------------


def _list_conditions(conn: Connection, project_id: str, query: PromptListQuery) -> list:
    where = [prompts.c.project_id == project_id]
    if query.conditions is not None:
        # raises QueryError for a column or type the prompt list does not know
        resolved = columns_used([], query.conditions, FILTER_COLUMNS)
        return where + compile_filters(resolved, conn.dialect.name)
    if query.name is not None:
        where.append(prompts.c.name == query.name)
    if query.version is not None:
        where.append(prompts.c.version == query.version)
    if query.label is not None:
        where.append(_has_label(conn, query.label))
    if query.tag is not None:
        where.append(array_condition(prompts.c.tags, "any of", [query.tag], conn.dialect.name))
    if query.updated_from is not None:
        where.append(prompts.c.updated_at >= query.updated_from)
    if query.updated_to is not None:
        where.append(prompts.c.updated_at < query.updated_to)
    return where


def list_prompt_names(
    conn: Connection, project_id: str, query: PromptListQuery, limit: int, offset: int
) -> tuple[list[str], int]:
    """A page of the names having at least one matching version (by name), and how many such names exist."""
    where = and_(*_list_conditions(conn, project_id, query))
    total = conn.execute(select(func.count(func.distinct(prompts.c.name))).where(where)).scalar_one()
    names = conn.execute(
        select(prompts.c.name)
        .where(where)
        .group_by(prompts.c.name)
        .order_by(prompts.c.name)
        .limit(limit)
        .offset(offset)
    ).scalars()
    return list(names), int(total)


def list_matching_versions(
    conn: Connection, project_id: str, query: PromptListQuery, names: Sequence[str]
) -> list[dict[str, Any]]:
    """The matching versions of ``names`` (without their content), oldest first."""
    if not names:
        return []
    cols = [c for c in prompts.c if c.name != "prompt"]
    stmt = (
        select(*cols)
        .where(*_list_conditions(conn, project_id, query), prompts.c.name.in_(list(names)))
        .order_by(prompts.c.name, prompts.c.version)
    )
    return _rows(conn, stmt)
