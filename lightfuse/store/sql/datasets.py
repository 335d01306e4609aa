"""Datasets, versioned dataset items, dataset runs and run items.

Functions take an open ``Connection``; the caller owns the transaction (``transactions.write_transaction`` for
read-modify-write sequences). Rows come back as plain dicts with epoch-ms times.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, and_, case, delete, func, or_, select, update

from lightfuse.store.sql.database import insert_for
from lightfuse.store.sql.tables import observations
from lightfuse.store.sql.tables_datasets import dataset_items, dataset_run_items, dataset_runs, datasets

DATASET_UPDATABLE = ("description", "metadata", "input_schema", "expected_output_schema")


def _one(conn: Connection, stmt) -> dict[str, Any] | None:
    row = conn.execute(stmt).mappings().first()
    return dict(row) if row else None


def _page(conn: Connection, stmt, where, limit: int | None, offset: int, order) -> tuple[list[dict], int]:
    total = conn.execute(select(func.count()).select_from(stmt.where(where).subquery())).scalar_one()
    query = stmt.where(where).order_by(*order).offset(offset)
    if limit is not None:
        query = query.limit(limit)
    return [dict(r) for r in conn.execute(query).mappings()], total


# --- datasets -----------------------------------------------------------------------------------------------


def get_dataset_by_name(conn: Connection, project_id: str, name: str) -> dict[str, Any] | None:
    return _one(conn, select(datasets).where(datasets.c.project_id == project_id, datasets.c.name == name))


def get_dataset(conn: Connection, project_id: str, dataset_id: str) -> dict[str, Any] | None:
    return _one(
        conn, select(datasets).where(datasets.c.project_id == project_id, datasets.c.id == dataset_id)
    )


def upsert_dataset(conn: Connection, values: dict[str, Any], changed: Iterable[str]) -> dict[str, Any]:
    """Insert, or update the ``changed`` columns of the project's dataset with that name; -> the stored row."""
    insert = insert_for(conn)(datasets).values(**values)
    set_ = {c: insert.excluded[c] for c in changed if c in DATASET_UPDATABLE}
    set_["updated_at"] = insert.excluded.updated_at
    conn.execute(insert.on_conflict_do_update(index_elements=["project_id", "name"], set_=set_))
    row = get_dataset_by_name(conn, values["project_id"], values["name"])
    assert row is not None
    return row


def list_datasets(conn: Connection, project_id: str, limit: int, offset: int) -> tuple[list[dict], int]:
    return _page(
        conn,
        select(datasets),
        datasets.c.project_id == project_id,
        limit,
        offset,
        (datasets.c.created_at.desc(), datasets.c.id),
    )


def list_run_names(conn: Connection, dataset_ids: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {d: [] for d in dataset_ids}
    if dataset_ids:
        rows = conn.execute(
            select(dataset_runs.c.dataset_id, dataset_runs.c.name)
            .where(dataset_runs.c.dataset_id.in_(dataset_ids))
            .order_by(dataset_runs.c.created_at.desc(), dataset_runs.c.id)
        )
        for dataset_id, name in rows:
            out[dataset_id].append(name)
    return out


def list_active_item_ids(conn: Connection, dataset_ids: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {d: [] for d in dataset_ids}
    if dataset_ids:
        rows = conn.execute(
            select(dataset_items.c.dataset_id, dataset_items.c.id)
            .where(
                dataset_items.c.dataset_id.in_(dataset_ids), _current(), dataset_items.c.status == "ACTIVE"
            )
            .order_by(dataset_items.c.created_at.desc(), dataset_items.c.id)
        )
        for dataset_id, item_id in rows:
            out[dataset_id].append(item_id)
    return out


# --- dataset items (SCD type 2) -----------------------------------------------------------------------------


def _current():
    return and_(dataset_items.c.valid_to.is_(None), dataset_items.c.is_deleted.is_(False))


def _as_of(version_ms: int):
    return and_(
        dataset_items.c.valid_from <= version_ms,
        or_(dataset_items.c.valid_to.is_(None), dataset_items.c.valid_to > version_ms),
        dataset_items.c.is_deleted.is_(False),
    )


_ITEM_WITH_NAME = select(dataset_items, datasets.c.name.label("dataset_name")).join(
    datasets, datasets.c.id == dataset_items.c.dataset_id
)


def get_item(conn: Connection, project_id: str, item_id: str, version_ms: int | None = None) -> dict | None:
    """The live version of an item (or the one valid at ``version_ms``), with its dataset's name."""
    return _one(
        conn,
        _ITEM_WITH_NAME.where(
            dataset_items.c.project_id == project_id,
            dataset_items.c.id == item_id,
            _current() if version_ms is None else _as_of(version_ms),
        ),
    )


def close_item(conn: Connection, project_id: str, item_id: str, now: int) -> dict[str, Any] | None:
    """End the current version of an item (tombstones included) -> that row with its new ``valid_to``.

    ``valid_to`` = max(now, valid_from + 1 ms): versions of an item are strictly ordered even when two writes
    land in the same millisecond. The next version starts exactly at this ``valid_to``.
    """
    valid_to = case((dataset_items.c.valid_from >= now, dataset_items.c.valid_from + 1), else_=now)
    row = (
        conn.execute(
            update(dataset_items)
            .where(
                dataset_items.c.project_id == project_id,
                dataset_items.c.id == item_id,
                dataset_items.c.valid_to.is_(None),
            )
            .values(valid_to=valid_to)
            .returning(*dataset_items.c)
        )
        .mappings()
        .first()
    )
    return dict(row) if row else None


def insert_item_version(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(dataset_items.insert().values(**values))


def list_items(
    conn: Connection,
    project_id: str,
    *,
    dataset_id: str | None,
    source_trace_id: str | None,
    source_observation_id: str | None,
    version_ms: int | None,
    limit: int | None,
    offset: int,
) -> tuple[list[dict], int]:
    """ACTIVE items (live, or as of ``version_ms``), newest first."""
    where = [
        dataset_items.c.project_id == project_id,
        dataset_items.c.status == "ACTIVE",
        _current() if version_ms is None else _as_of(version_ms),
    ]
    if dataset_id is not None:
        where.append(dataset_items.c.dataset_id == dataset_id)
    if source_trace_id is not None:
        where.append(dataset_items.c.source_trace_id == source_trace_id)
    if source_observation_id is not None:
        where.append(dataset_items.c.source_observation_id == source_observation_id)
    return _page(
        conn,
        _ITEM_WITH_NAME,
        and_(*where),
        limit,
        offset,
        (dataset_items.c.created_at.desc(), dataset_items.c.id),
    )


def list_live_items(conn: Connection, dataset_id: str) -> list[dict[str, Any]]:
    rows = conn.execute(select(dataset_items).where(dataset_items.c.dataset_id == dataset_id, _current()))
    return [dict(r) for r in rows.mappings()]


# --- runs and run items -------------------------------------------------------------------------------------

_RUN_WITH_NAME = select(dataset_runs, datasets.c.name.label("dataset_name")).join(
    datasets, datasets.c.id == dataset_runs.c.dataset_id
)


def get_run_by_name(conn: Connection, project_id: str, dataset_id: str, name: str) -> dict[str, Any] | None:
    return _one(
        conn,
        _RUN_WITH_NAME.where(
            dataset_runs.c.project_id == project_id,
            dataset_runs.c.dataset_id == dataset_id,
            dataset_runs.c.name == name,
        ),
    )


def get_run(conn: Connection, project_id: str, run_id: str) -> dict[str, Any] | None:
    return _one(
        conn, _RUN_WITH_NAME.where(dataset_runs.c.project_id == project_id, dataset_runs.c.id == run_id)
    )


def create_run_if_absent(conn: Connection, values: dict[str, Any]) -> None:
    """Insert unless the run exists (a concurrent creator may have won, with the same derived id)."""
    conn.execute(insert_for(conn)(dataset_runs).values(**values).on_conflict_do_nothing())


def run_id_taken(conn: Connection, run_id: str) -> bool:
    return conn.execute(select(dataset_runs.c.id).where(dataset_runs.c.id == run_id)).first() is not None


def update_run(conn: Connection, run_id: str, values: dict[str, Any]) -> None:
    conn.execute(update(dataset_runs).where(dataset_runs.c.id == run_id).values(**values))


def list_runs(conn: Connection, dataset_id: str, limit: int, offset: int) -> tuple[list[dict], int]:
    return _page(
        conn,
        _RUN_WITH_NAME,
        dataset_runs.c.dataset_id == dataset_id,
        limit,
        offset,
        (dataset_runs.c.created_at.desc(), dataset_runs.c.id),
    )


def delete_run(conn: Connection, run_id: str) -> None:
    # explicit child delete: no reliance on the database enforcing ON DELETE CASCADE
    conn.execute(delete(dataset_run_items).where(dataset_run_items.c.dataset_run_id == run_id))
    conn.execute(delete(dataset_runs).where(dataset_runs.c.id == run_id))


def insert_run_items(conn: Connection, rows: list[dict[str, Any]], *, ignore_existing: bool = False) -> None:
    if not rows:
        return
    stmt = insert_for(conn)(dataset_run_items).values(rows)
    if ignore_existing:
        stmt = stmt.on_conflict_do_nothing(index_elements=["id"])
    conn.execute(stmt)


def list_run_items(
    conn: Connection, run_id: str, limit: int | None = None, offset: int = 0
) -> tuple[list[dict], int]:
    stmt = select(dataset_run_items, dataset_runs.c.name.label("dataset_run_name")).join(
        dataset_runs, dataset_runs.c.id == dataset_run_items.c.dataset_run_id
    )
    return _page(
        conn,
        stmt,
        dataset_run_items.c.dataset_run_id == run_id,
        limit,
        offset,
        (dataset_run_items.c.created_at.desc(), dataset_run_items.c.id),
    )


def delete_run_items_of_item(conn: Connection, project_id: str, item_id: str) -> None:
    conn.execute(
        delete(dataset_run_items).where(
            dataset_run_items.c.project_id == project_id, dataset_run_items.c.dataset_item_id == item_id
        )
    )


def get_observation_trace_id(conn: Connection, project_id: str, observation_id: str) -> str | None:
    return conn.execute(
        select(observations.c.trace_id).where(
            observations.c.project_id == project_id, observations.c.id == observation_id
        )
    ).scalar()
