"""Experiment reads (``/api/public/experiments``, ``/api/public/experiment-items``) over dataset runs.

An experiment is a dataset run, an experiment item one of its run items. An item's start is its observation's
start (the item's root span), else its trace's timestamp, else when the run item was written; its end is the
observation's end. Both lists page by keyset (newest first, then id), never by offset.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, and_, func, not_, or_, select
from sqlalchemy.sql.elements import ColumnElement

from lightfuse.store.sql.tables import observations, traces
from lightfuse.store.sql.tables_datasets import dataset_items, dataset_run_items, dataset_runs
from lightfuse.store.sql.tracing.writes import load_io

ri, runs, obs, tr = dataset_run_items, dataset_runs, observations, traces


@dataclass(frozen=True)
class Condition:
    """One filter on a column name of ``COLUMNS``: operator ``=``, ``contains``, ``does not contain``,
    ``starts with``, ``ends with`` (a string value) or ``any of`` / ``none of`` (a list of strings)."""

    column: str
    operator: str
    value: Any


@dataclass(frozen=True)
class ExperimentQuery:
    project_id: str
    from_ms: int
    to_ms: int | None
    limit: int
    conditions: Sequence[Condition] = field(default_factory=tuple)
    after: tuple[int, str] | None = None  # the cursor: (sort time, id) of the last row served


def _item_start() -> ColumnElement:
    return func.coalesce(obs.c.start_time, tr.c.timestamp, ri.c.created_at)


def _joined(query):
    return query.select_from(
        ri.join(runs, runs.c.id == ri.c.dataset_run_id)
        .outerjoin(obs, and_(obs.c.project_id == ri.c.project_id, obs.c.id == ri.c.observation_id))
        .outerjoin(tr, and_(tr.c.project_id == ri.c.project_id, tr.c.id == ri.c.trace_id))
    )


COLUMNS = {
    "experimentId": runs.c.id,
    "experimentName": runs.c.name,
    "experimentItemId": ri.c.dataset_item_id,
    "datasetId": runs.c.dataset_id,
}


def _condition(column: ColumnElement, cond: Condition) -> ColumnElement:
    op, value = cond.operator, cond.value
    if op == "any of":
        return column.in_(list(value))
    if op == "none of":
        return column.not_in(list(value))
    if op == "=":
        return column == value
    if op == "contains":
        return column.contains(value, autoescape=True)
    if op == "does not contain":
        return not_(column.contains(value, autoescape=True))
    if op == "starts with":
        return column.startswith(value, autoescape=True)
    if op == "ends with":
        return column.endswith(value, autoescape=True)
    raise ValueError(f"unknown operator {op}")


def _where(q: ExperimentQuery) -> list[ColumnElement]:
    start = _item_start()
    where = [ri.c.project_id == q.project_id, start >= q.from_ms]
    if q.to_ms is not None:
        where.append(start < q.to_ms)
    where += [_condition(COLUMNS[c.column], c) for c in q.conditions]
    return where


def list_experiments(conn: Connection, q: ExperimentQuery) -> list[dict[str, Any]]:
    """Runs with items in the range: first/last item times and item count, latest activity first."""
    start = _item_start()
    grouped = (
        _joined(
            select(
                runs.c.id,
                func.min(start).label("start_ms"),
                func.max(func.coalesce(obs.c.end_time, start)).label("end_ms"),
                func.max(start).label("activity_ms"),
                func.count().label("item_count"),
            )
        )
        .where(*_where(q))
        .group_by(runs.c.id)
        .subquery()
    )
    stmt = select(
        grouped,
        runs.c.name,
        runs.c.description,
        runs.c.metadata,
        runs.c.dataset_id,
    ).join(runs, runs.c.id == grouped.c.id)
    if q.after is not None:
        t, last_id = q.after
        stmt = stmt.where(
            or_(grouped.c.activity_ms < t, and_(grouped.c.activity_ms == t, grouped.c.id < last_id))
        )
    stmt = stmt.order_by(grouped.c.activity_ms.desc(), grouped.c.id.desc()).limit(q.limit)
    return [dict(r) for r in conn.execute(stmt).mappings()]


def list_experiment_items(conn: Connection, q: ExperimentQuery) -> list[dict[str, Any]]:
    """Run items in the range with their run, observation (or trace) and dataset item, newest first."""
    start = _item_start().label("start_ms")
    # the item's version the run used: the dataset item row valid when the run item was written
    item = dataset_items
    stmt = _joined(
        select(
            ri.c.id,
            ri.c.trace_id,
            ri.c.dataset_item_id,
            ri.c.created_at,
            start,
            obs.c.end_time.label("end_ms"),
            obs.c.level,
            func.coalesce(obs.c.environment, tr.c.environment).label("environment"),
            func.coalesce(obs.c.input, tr.c.input).label("input"),
            func.coalesce(obs.c.output, tr.c.output).label("output"),
            obs.c.metadata.label("observation_metadata"),
            tr.c.metadata.label("trace_metadata"),
            runs.c.id.label("run_id"),
            runs.c.name.label("run_name"),
            runs.c.description.label("run_description"),
            runs.c.metadata.label("run_metadata"),
            runs.c.dataset_id,
        )
    ).where(*_where(q))
    if q.after is not None:
        t, last_id = q.after
        stmt = stmt.where(or_(_item_start() < t, and_(_item_start() == t, ri.c.id < last_id)))
    stmt = stmt.order_by(_item_start().desc(), ri.c.id.desc()).limit(q.limit)
    rows = [dict(r) for r in conn.execute(stmt).mappings()]
    for row in rows:  # IO as every read returns it (strings raw, JSON parsed)
        row["input"], row["output"] = load_io(row["input"]), load_io(row["output"])
    _attach_dataset_items(conn, q.project_id, rows, item)
    return rows


def _attach_dataset_items(conn: Connection, project_id: str, rows: list[dict[str, Any]], item) -> None:
    """Each row's dataset item version as of the run item's write: expected output, metadata, valid_from."""
    ids = sorted({r["dataset_item_id"] for r in rows})
    if not ids:
        return
    versions = conn.execute(
        select(item.c.id, item.c.valid_from, item.c.valid_to, item.c.expected_output, item.c.metadata)
        .where(item.c.project_id == project_id, item.c.id.in_(ids))
        .order_by(item.c.valid_from)
    ).mappings()
    by_id: dict[str, list[dict[str, Any]]] = {}
    for version in versions:
        by_id.setdefault(version["id"], []).append(dict(version))
    for row in rows:
        chosen: dict[str, Any] | None = None
        for v in by_id.get(row["dataset_item_id"], []):
            if v["valid_from"] <= row["created_at"]:
                chosen = v
        if chosen is None and by_id.get(row["dataset_item_id"]):
            chosen = by_id[row["dataset_item_id"]][0]  # written before its item existed: its first version
        row["dataset_item"] = chosen
