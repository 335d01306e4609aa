"""Per-version metrics of the generations linked to a prompt (observations carry prompt_name/prompt_version),
and the scores of their traces, for the prompt page. Functions take an open Connection.

Portable SQL (window functions exist on SQLite >= 3.25 and Postgres): a median is the mean of the one or two
middle rows of each version's ordered non-null values, so neither dialect needs its own branch. Both queries
read the observations of one prompt name through ix_observations_project_id_prompt_name_prompt_version (0010).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, and_, case, func, or_, select

from lightfuse.store.sql.tables import observations, scores


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
