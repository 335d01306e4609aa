"""What the prompt pages read beyond the prompts API: names for the folder list, protected labels, the
authors of versions, and per-version metrics of the generations linked to a prompt. Functions take an open
Connection; the caller owns the transaction.

The metrics are portable SQL (window functions exist on SQLite >= 3.25 and Postgres): a median is the mean
of the one or two middle rows of each version's ordered values, so neither dialect needs its own branch.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, and_, case, delete, distinct, func, or_, select

from lightfuse.store.sql.database import insert_for
from lightfuse.store.sql.filters import array_condition
from lightfuse.store.sql.tables import observations, scores, users
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
    stmt = select(distinct(prompts.c.name)).where(*where).order_by(prompts.c.name)
    return list(conn.execute(stmt).scalars())


def list_tags(conn: Connection, project_id: str) -> list[str]:
    """Every tag used in the project (tags are per name, so the latest versions suffice)."""
    rows = conn.execute(select(distinct(prompts.c.tags)).where(prompts.c.project_id == project_id)).scalars()
    return sorted({t for tags in rows for t in (tags or [])})


def user_labels(conn: Connection, user_ids: list[str]) -> dict[str, str]:
    """user id -> name (or email) for the ids that are users; ``API`` and unknown ids are left out."""
    if not user_ids:
        return {}
    stmt = select(users.c.id, users.c.name, users.c.email).where(users.c.id.in_(sorted(set(user_ids))))
    return {r.id: r.name or r.email for r in conn.execute(stmt)}


# --- per-version metrics ------------------------------------------------------------------------------------


def _median(value, rank, count):
    # the middle row (odd count) or the two middle rows (even count) of the non-null values
    middle = or_(rank == (count + 1) // 2, rank == (count + 2) // 2)
    return func.avg(case((and_(value.is_not(None), middle), value)))


def version_metrics(conn: Connection, project_id: str, name: str) -> list[dict[str, Any]]:
    """Per version of ``name``: generation count, first/last use, medians of latency (ms), input/output
    tokens and cost, and the total cost. One query."""
    o = observations
    base = (
        select(
            o.c.prompt_version.label("v"),
            o.c.start_time.label("t"),
            (o.c.end_time - o.c.start_time).label("lat"),
            o.c.input_tokens.label("inp"),
            o.c.output_tokens.label("outp"),
            o.c.total_cost.label("cost"),
        )
        .where(o.c.project_id == project_id, o.c.prompt_name == name, o.c.prompt_version.is_not(None))
        .cte("linked")
    )
    ranked_cols = [base.c.v, base.c.t, base.c.lat, base.c.inp, base.c.outp, base.c.cost]
    for metric in ("lat", "inp", "outp", "cost"):
        col = base.c[metric]
        ranked_cols.append(
            func.row_number().over(partition_by=[base.c.v, col.is_(None)], order_by=col).label(f"r_{metric}")
        )
        ranked_cols.append(func.count(col).over(partition_by=base.c.v).label(f"n_{metric}"))
    ranked = select(*ranked_cols).subquery("ranked")
    r = ranked.c
    stmt = (
        select(
            r.v.label("version"),
            func.count().label("generations"),
            func.min(r.t).label("first_used"),
            func.max(r.t).label("last_used"),
            _median(r.lat, r.r_lat, r.n_lat).label("median_latency_ms"),
            _median(r.inp, r.r_inp, r.n_inp).label("median_input_tokens"),
            _median(r.outp, r.r_outp, r.n_outp).label("median_output_tokens"),
            _median(r.cost, r.r_cost, r.n_cost).label("median_cost"),
            func.sum(r.cost).label("total_cost"),
        )
        .group_by(r.v)
        .order_by(r.v.desc())
    )
    return [dict(row) for row in conn.execute(stmt).mappings()]


def version_scores(conn: Connection, project_id: str, name: str) -> list[dict[str, Any]]:
    """Per version and score name: the scores of the traces holding a generation of that version."""
    o = observations
    linked = (
        select(o.c.prompt_version.label("v"), o.c.trace_id)
        .where(o.c.project_id == project_id, o.c.prompt_name == name, o.c.prompt_version.is_not(None))
        .distinct()
        .subquery("linked_traces")
    )
    stmt = (
        select(
            linked.c.v.label("version"),
            scores.c.name,
            func.avg(scores.c.value).label("avg"),
            func.count().label("count"),
        )
        .select_from(linked.join(scores, scores.c.trace_id == linked.c.trace_id))
        .where(scores.c.project_id == project_id)
        .group_by(linked.c.v, scores.c.name)
        .order_by(linked.c.v.desc(), scores.c.name)
    )
    return [dict(row) for row in conn.execute(stmt).mappings()]
