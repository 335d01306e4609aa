"""Experiments as read by ``GET /api/public/experiments`` and ``/experiment-items``: dataset runs and their run
items (runs the SDKs report through the run-item API or through ``langfuse.experiment.*`` span attributes).

An item's time, level, environment and IO are those of the observation it links (the item's root span); a run
item that links only a trace falls back to its own creation time. Functions take an open ``Connection``; rows
come back as plain dicts with epoch-ms times.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import Connection, and_, func, select

from lightfuse.store.sql.tables import observations
from lightfuse.store.sql.tables_datasets import dataset_items, dataset_run_items, dataset_runs

__all__ = ["ExperimentFilter", "list_experiment_items", "list_experiments"]


@dataclass
class ExperimentFilter:
    """Rows of items started in [from_ms, to_ms); empty lists mean "any"."""

    from_ms: int
    to_ms: int | None = None
    experiment_ids: list[str] = field(default_factory=list)
    experiment_names: list[str] = field(default_factory=list)
    dataset_ids: list[str] = field(default_factory=list)
    item_ids: list[str] = field(default_factory=list)


_o = observations.c
_ri = dataset_run_items.c
_r = dataset_runs.c
_item_start = func.coalesce(_o.start_time, _ri.created_at)
_item_end = func.coalesce(_o.end_time, _o.start_time, _ri.created_at)
_joined = dataset_run_items.join(dataset_runs, _r.id == _ri.dataset_run_id).outerjoin(
    observations, and_(_o.project_id == _ri.project_id, _o.id == _ri.observation_id)
)


def _load_io(text: str | None) -> Any:
    # the trace writer stores strings raw and anything else as JSON text; both read back parsed, as Langfuse does
    if text is None:
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text


def _where(project_id: str, f: ExperimentFilter) -> list[Any]:
    where: list[Any] = [_ri.project_id == project_id, _item_start >= f.from_ms]
    if f.to_ms is not None:
        where.append(_item_start < f.to_ms)
    if f.experiment_ids:
        where.append(_r.id.in_(f.experiment_ids))
    if f.experiment_names:
        where.append(_r.name.in_(f.experiment_names))
    if f.dataset_ids:
        where.append(_r.dataset_id.in_(f.dataset_ids))
    if f.item_ids:
        where.append(_ri.dataset_item_id.in_(f.item_ids))
    return where


def list_experiments(
    conn: Connection, project_id: str, f: ExperimentFilter, limit: int, offset: int
) -> list[dict[str, Any]]:
    """Runs with items in the range, latest activity first: item count, first start and last end in range."""
    last_activity = func.max(_item_start)
    stmt = (
        select(
            _r.id,
            _r.name,
            _r.description,
            _r.metadata,
            _r.dataset_id,
            func.min(_item_start).label("start_time"),
            func.max(_item_end).label("end_time"),
            func.count().label("item_count"),
            last_activity.label("last_activity"),
        )
        .select_from(_joined)
        .where(*_where(project_id, f))
        .group_by(_r.id, _r.name, _r.description, _r.metadata, _r.dataset_id)
        .order_by(last_activity.desc(), _r.id)
        .limit(limit)
        .offset(offset)
    )
    return [dict(m) for m in conn.execute(stmt).mappings()]


def list_experiment_items(
    conn: Connection, project_id: str, f: ExperimentFilter, limit: int, offset: int, *, with_io: bool
) -> list[dict[str, Any]]:
    """Run items in the range, newest first, with their run, root observation and current dataset item."""
    cols: list[Any] = [
        _ri.id,
        _ri.trace_id,
        _ri.observation_id,
        _ri.dataset_item_id,
        _r.id.label("experiment_id"),
        _r.name.label("experiment_name"),
        _r.description.label("experiment_description"),
        _r.metadata.label("experiment_metadata"),
        _r.dataset_id,
        _item_start.label("start_time"),
        _o.end_time,
        _o.level,
        _o.environment,
        _o.metadata,
        dataset_items.c.metadata.label("item_metadata"),
    ]
    if with_io:
        cols += [_o.input, _o.output, dataset_items.c.expected_output]
    source = _joined.outerjoin(
        dataset_items,
        and_(
            dataset_items.c.project_id == _ri.project_id,
            dataset_items.c.id == _ri.dataset_item_id,
            dataset_items.c.valid_to.is_(None),
        ),
    )
    stmt = (
        select(*cols)
        .select_from(source)
        .where(*_where(project_id, f))
        .order_by(_item_start.desc(), _ri.id)
        .limit(limit)
        .offset(offset)
    )
    out = []
    for m in conn.execute(stmt).mappings():
        row = dict(m)
        if with_io:
            row["input"], row["output"] = _load_io(row["input"]), _load_io(row["output"])
        out.append(row)
    return out
