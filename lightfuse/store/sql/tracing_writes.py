"""Writes of traces, observations, scores and the raw event log, as used by the ingestion writer.

Rows come in as the dicts of ``services.rows``; the only translation here is IO to JSON text and the token
columns denormalised from usage_details.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import orjson
from sqlalchemy import JSON, Boolean, Connection, Table, delete, select, tuple_

from lightfuse.store.sql.database import insert_for
from lightfuse.store.sql.tables import ingestion_events, observations, scores, trace_sessions, traces

TABLES: dict[str, Table] = {"trace": traces, "observation": observations, "score": scores}
_COLUMN_NAMES = {kind: tuple(c.name for c in table.columns) for kind, table in TABLES.items()}
_IO_COLUMNS = ("input", "output")
# SQLite limits bound parameters per statement; stay well below it when selecting by id lists.
_CHUNK = 500


def dump_io(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):  # strings are stored raw and JSON-parsed on read, as Langfuse does
        return value
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def load_io(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text


def token_columns(usage: dict[str, Any] | None) -> tuple[int, int, int]:
    """input/output/total tokens as the read API defines them: sums of keys containing input/output."""
    if not usage:
        return 0, 0, 0
    inp = sum(v for k, v in usage.items() if "input" in k and isinstance(v, int))
    out = sum(v for k, v in usage.items() if "output" in k and isinstance(v, int))
    total = usage.get("total")
    return inp, out, total if isinstance(total, int) else 0


def row_to_db(kind: str, row: dict[str, Any]) -> dict[str, Any]:
    values = dict(row)
    if kind != "score":
        for col in _IO_COLUMNS:
            values[col] = dump_io(values.get(col))
    if kind == "observation":
        values["input_tokens"], values["output_tokens"], values["total_tokens"] = token_columns(
            values.get("usage_details")
        )
    return values


def row_from_db(kind: str, mapping: Any) -> dict[str, Any]:
    row = dict(mapping)
    if kind != "score":
        for col in _IO_COLUMNS:
            row[col] = load_io(row.get(col))
    if kind == "observation":
        for col in ("input_tokens", "output_tokens", "total_tokens"):
            row.pop(col, None)
    return row


def _chunks(items: Sequence[str]) -> Iterable[Sequence[str]]:
    for i in range(0, len(items), _CHUNK):
        yield items[i : i + _CHUNK]


def get_rows(conn: Connection, kind: str, project_id: str, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The stored rows of these ids, as the merge reads them.

    The writer calls this three times per commit, so like the upserts it goes to the driver with plain SQL:
    building and compiling a SQLAlchemy select with an IN list each time cost more than the lookups.
    """
    dialect = conn.dialect.name
    names = _COLUMN_NAMES[kind]
    converters = _row_converters(dialect, kind)
    out: dict[str, dict[str, Any]] = {}
    for chunk in _chunks(list(ids)):
        result = conn.exec_driver_sql(_select_sql(dialect, kind, len(chunk)), (project_id, *chunk))
        for values in result:
            row = dict(zip(names, values, strict=True))
            for name, convert in converters:
                value = row[name]
                if value is not None:
                    row[name] = convert(value)
            out[row["id"]] = row_from_db(kind, row)
    return out


_SELECT_SQL: dict[tuple[str, str, int], str] = {}
_CONVERTERS: dict[tuple[str, str], list[tuple[str, Any]]] = {}


def _select_sql(dialect: str, kind: str, count: int) -> str:
    key = (dialect, kind, count)
    sql = _SELECT_SQL.get(key)
    if sql is None:
        mark = "%s" if dialect == "postgresql" else "?"
        columns = ", ".join(f'"{n}"' for n in _COLUMN_NAMES[kind])
        sql = (
            f'SELECT {columns} FROM "{TABLES[kind].name}" '
            f"WHERE project_id = {mark} AND id IN ({', '.join([mark] * count)})"
        )
        _SELECT_SQL[key] = sql  # bounded: counts go up to _CHUNK
    return sql


def _row_converters(dialect: str, kind: str) -> list[tuple[str, Any]]:
    """What SQLAlchemy's result processing did for these columns: psycopg already returns JSON values and
    booleans; SQLite returns JSON as text and booleans as 0/1."""
    key = (dialect, kind)
    found = _CONVERTERS.get(key)
    if found is None:
        found = []
        if dialect != "postgresql":
            for column in TABLES[kind].columns:
                if isinstance(column.type, JSON):
                    found.append((column.name, _json_from_text))
                elif isinstance(column.type, Boolean):
                    found.append((column.name, bool))
        _CONVERTERS[key] = found
    return found


def _json_from_text(value: Any) -> Any:
    return orjson.loads(value) if isinstance(value, str | bytes) else value


# The writer is the ingestion hot path: its upserts go to the driver as plain SQL text with positional
# parameters (built once per dialect and table), skipping SQLAlchemy's per-row parameter processing, which
# cost more than SQLite's own work. JSON columns are serialised here with orjson; Postgres casts them.
_UPSERT_SQL: dict[tuple[str, str], tuple[str, tuple[str, ...], frozenset[str]]] = {}
_JSON_DUMP_OPTS = orjson.OPT_NON_STR_KEYS


def _upsert_sql(dialect: str, kind: str) -> tuple[str, tuple[str, ...], frozenset[str]]:
    key = (dialect, kind)
    cached = _UPSERT_SQL.get(key)
    if cached is not None:
        return cached
    if kind == "event":
        table, conflict = ingestion_events, ("project_id", "entity_kind", "entity_created_at", "entity_id", "event_id")
    else:
        table, conflict = TABLES[kind], ("project_id", "id")
    names = tuple(c.name for c in table.columns)
    json_cols = frozenset(c.name for c in table.columns if isinstance(c.type, JSON))
    if dialect == "postgresql":
        marks = ", ".join("%s::jsonb" if n in json_cols else "%s" for n in names)
    else:
        marks = ", ".join("?" for _ in names)
    quoted = ", ".join(f'"{n}"' for n in names)
    updates = ", ".join(f'"{n}" = excluded."{n}"' for n in names if n not in conflict)
    sql = (
        f'INSERT INTO "{table.name}" ({quoted}) VALUES ({marks}) '
        f"ON CONFLICT ({', '.join(conflict)}) DO UPDATE SET {updates}"
    )
    cached = (sql, names, json_cols)
    _UPSERT_SQL[key] = cached
    return cached


def _execute_upsert(conn: Connection, kind: str, rows: Iterable[dict[str, Any]]) -> None:
    sql, names, json_cols = _upsert_sql(conn.dialect.name, kind)
    json_positions = [i for i, n in enumerate(names) if n in json_cols]
    dumps = orjson.dumps
    params = []
    for row in rows:
        values = [row.get(n) for n in names]
        for i in json_positions:
            value = values[i]
            if value is not None:
                values[i] = dumps(value, option=_JSON_DUMP_OPTS).decode()
        params.append(tuple(values))
    if params:
        conn.exec_driver_sql(sql, params)


def upsert_rows(conn: Connection, kind: str, rows: list[dict[str, Any]]) -> None:
    """Insert or replace whole rows (the merge already folded the stored state into them)."""
    if rows:
        _execute_upsert(conn, kind, (row_to_db(kind, r) for r in rows))


def insert_events(conn: Connection, events: list[dict[str, Any]]) -> None:
    """Append to the raw event log; a re-sent event id replaces its earlier copy."""
    if events:
        _execute_upsert(conn, "event", events)


def list_entity_events(
    conn: Connection, project_id: str, kind: str, entity_keys: Sequence[tuple[int, str]]
) -> dict[str, list[dict[str, Any]]]:
    """The logged events of entities given as (row created_at, entity id), by entity id."""
    out: dict[str, list[dict[str, Any]]] = {}
    for chunk in _chunks(list(entity_keys)):
        stmt = select(
            ingestion_events.c.entity_id,
            ingestion_events.c.event_id,
            ingestion_events.c.event_type,
            ingestion_events.c.event_ts,
            ingestion_events.c.body,
        ).where(
            ingestion_events.c.project_id == project_id,
            ingestion_events.c.entity_kind == kind,
            tuple_(ingestion_events.c.entity_created_at, ingestion_events.c.entity_id).in_(chunk),
        )
        for m in conn.execute(stmt).mappings():
            out.setdefault(m["entity_id"], []).append(dict(m))
    return out


def _delete_logged(conn: Connection, project_id: str, kind: str, keys: Sequence[tuple[int, str]]) -> None:
    for chunk in _chunks(list(keys)):
        conn.execute(
            delete(ingestion_events).where(
                ingestion_events.c.project_id == project_id,
                ingestion_events.c.entity_kind == kind,
                tuple_(ingestion_events.c.entity_created_at, ingestion_events.c.entity_id).in_(chunk),
            )
        )


def ensure_sessions(conn: Connection, sessions: list[dict[str, Any]]) -> None:
    if not sessions:
        return
    stmt = insert_for(conn)(trace_sessions).on_conflict_do_nothing(index_elements=["project_id", "id"])
    conn.execute(stmt, sessions)


def delete_traces(conn: Connection, project_id: str, trace_ids: Sequence[str]) -> None:
    """Remove traces with their observations, scores and raw events."""
    for chunk in _chunks(list(trace_ids)):
        keyed = {
            "trace": select(traces.c.created_at, traces.c.id).where(
                traces.c.project_id == project_id, traces.c.id.in_(chunk)
            ),
            "observation": select(observations.c.created_at, observations.c.id).where(
                observations.c.project_id == project_id, observations.c.trace_id.in_(chunk)
            ),
            "score": select(scores.c.created_at, scores.c.id).where(
                scores.c.project_id == project_id, scores.c.trace_id.in_(chunk)
            ),
        }
        for kind, stmt in keyed.items():
            _delete_logged(conn, project_id, kind, [tuple(r) for r in conn.execute(stmt)])
        conn.execute(delete(observations).where(observations.c.project_id == project_id, observations.c.trace_id.in_(chunk)))
        conn.execute(delete(scores).where(scores.c.project_id == project_id, scores.c.trace_id.in_(chunk)))
        conn.execute(delete(traces).where(traces.c.project_id == project_id, traces.c.id.in_(chunk)))


def delete_scores(conn: Connection, project_id: str, score_ids: Sequence[str]) -> None:
    for chunk in _chunks(list(score_ids)):
        keys = conn.execute(
            select(scores.c.created_at, scores.c.id).where(scores.c.project_id == project_id, scores.c.id.in_(chunk))
        )
        _delete_logged(conn, project_id, "score", [tuple(r) for r in keys])
        conn.execute(delete(scores).where(scores.c.project_id == project_id, scores.c.id.in_(chunk)))
