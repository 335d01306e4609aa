"""Writes of traces, observations, scores and the raw event log, as used by the ingestion writer.

Rows come in as the dicts of ``services.common.rows``; the only translation here is IO to JSON text and the token
columns denormalised from usage_details.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Container, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import orjson
from sqlalchemy import JSON, Boolean, Connection, Table, delete, select, tuple_

from lightfuse.store.sql.tables import ingestion_events, observations, scores, trace_sessions, traces

TABLES: dict[str, Table] = {"trace": traces, "observation": observations, "score": scores}
_COLUMN_NAMES = {kind: tuple(c.name for c in table.columns) for kind, table in TABLES.items()}
_IO_COLUMNS = ("input", "output")
# SQLite limits bound parameters per statement; stay well below it when selecting by id lists.
_CHUNK = 500


def load_io(text: str | None) -> Any:
    """IO as read: the writer stores strings raw and anything else as JSON text, and parses both on read (as
    Langfuse does), so a string that is valid JSON comes back parsed."""
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


def row_from_db(kind: str, mapping: Any) -> dict[str, Any]:
    row = dict(mapping)
    if kind != "score":
        for col in _IO_COLUMNS:
            row[col] = load_io(row.get(col))
    if kind == "observation":
        for col in ("input_tokens", "output_tokens", "total_tokens"):
            row.pop(col, None)
    return row


_T = TypeVar("_T")


def _chunks(items: Sequence[_T]) -> Iterable[Sequence[_T]]:
    for i in range(0, len(items), _CHUNK):
        yield items[i : i + _CHUNK]


def get_rows(conn: Connection, kind: str, project_id: str, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The stored rows of these ids, as the merge reads them, locked until the transaction ends.

    Several server processes may share a Postgres database, each with its own writer. The writer merges in
    Python what it read, so on Postgres the rows are read FOR UPDATE (in id order, so two writers lock them in
    the same order): another writer's merge of the same entity waits for this commit and then reads its result,
    instead of both merging onto the same old row and the last commit erasing the other's events. A row that
    does not exist yet cannot be locked; ``write_entity_rows`` catches that case. On SQLite the writer's
    transaction already holds the database's write lock, so the select is the same as without locks.

    The writer calls this three times per commit, so like the upserts it goes to the driver with plain SQL:
    building and compiling a SQLAlchemy select with an IN list each time cost more than the lookups.
    """
    dialect = conn.dialect.name
    names = _COLUMN_NAMES[kind]
    converters = _row_converters(dialect, kind)
    out: dict[str, dict[str, Any]] = {}
    for chunk in _chunks(list(ids)):
        # The IN list is padded to a power of two by repeating an id (which selects nothing more): a table then
        # has a few statements, each compiled once per connection, instead of one per id count - and on SQLite
        # they do not crowd the upserts' statements out of the connection's statement cache.
        padded = 1 << (len(chunk) - 1).bit_length()
        result = conn.exec_driver_sql(
            _select_sql(dialect, kind, padded), (project_id, *chunk, *[chunk[-1]] * (padded - len(chunk)))
        )
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
        if dialect == "postgresql":
            sql += " ORDER BY id FOR UPDATE"
        _SELECT_SQL[key] = sql  # bounded: powers of two up to _CHUNK
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
#
# On SQLite many rows go into one multi-row INSERT instead of an executemany. The sqlite3 module releases the
# GIL around every step of a statement, and executemany steps once per row: while another thread runs Python
# (the event loop decoding requests), each step then waits up to the interpreter's switch interval (5 ms) to
# get the GIL back. Beside a thread looping in Python, the writer took ~23.5 ms per OTLP span that way and
# ~0.5 ms with one statement per block of rows (16 requests of the OTLP bench payload, 2-core VM). Blocks are
# powers of two rows, so that a table has a few statements, each compiled once per connection (sqlite3's
# statement cache) - a 256-row one takes ~6 ms to compile.
# Postgres keeps executemany: psycopg pipelines it, and one multi-row ON CONFLICT DO UPDATE cannot touch a
# key twice (a re-sent event in the same commit), which SQLite's upsert handles row by row.
#
# JSON is dumped without OPT_NON_STR_KEYS first: that option slows every dict down (~1.6x on event bodies),
# and only values built in Python can have a key that is not a string; those are dumped again with it.
_MAX_BLOCK_ROWS = 256
# the SQLite library's bound on variables per statement (32766 by default since 3.32), read on first use
_sqlite_variable_limit: int | None = None
# observations' token columns are not in the row: they are derived from usage_details, and bound last
_TOKEN_COLUMNS = ("input_tokens", "output_tokens", "total_tokens")


@dataclass(frozen=True)
class _Upsert:
    """One table's upsert statement for one dialect, and how a row becomes its parameters."""

    insert: str  # INSERT INTO ... (columns) VALUES
    row_marks: str  # one row's placeholders: (?, ?, ...)
    on_conflict: str  # ON CONFLICT ... DO ...
    names: tuple[str, ...]  # the row keys bound, in statement order (the token columns follow them)
    take: Callable[[dict[str, Any]], tuple[Any, ...]]  # the values of ``names`` from a complete row, in C
    io_positions: tuple[int, ...]  # input/output: JSON text, except that strings are stored raw
    json_positions: tuple[int, ...]
    tokens: bool
    block_sql: dict[int, str] = field(default_factory=dict)  # rows per statement -> its SQL

    @property
    def sql(self) -> str:
        return self.sql_for(1)

    def sql_for(self, rows: int) -> str:
        sql = self.block_sql.get(rows)
        if sql is None:
            sql = self.block_sql[rows] = (
                f"{self.insert} {', '.join([self.row_marks] * rows)} {self.on_conflict}"
            )
        return sql


# what the writer upserts: kind -> (table, conflict key, whether a conflicting row is replaced or kept)
_TARGETS: dict[str, tuple[Table, tuple[str, ...], bool]] = {
    "trace": (traces, ("project_id", "id"), True),
    "observation": (observations, ("project_id", "id"), True),
    "score": (scores, ("project_id", "id"), True),
    "event": (
        ingestion_events,
        ("project_id", "entity_kind", "entity_created_at", "entity_id", "event_id"),
        True,
    ),
    "session": (trace_sessions, ("project_id", "id"), False),
}
_UPSERTS: dict[tuple[str, str], _Upsert] = {}


def _upsert_for(dialect: str, kind: str) -> _Upsert:
    key = (dialect, kind)
    found = _UPSERTS.get(key)
    if found is not None:
        return found
    table, conflict, replace = _TARGETS[kind]
    tokens = kind == "observation"
    names = tuple(c.name for c in table.columns if not (tokens and c.name in _TOKEN_COLUMNS))
    columns = names + (_TOKEN_COLUMNS if tokens else ())
    json_cols = frozenset(c.name for c in table.columns if isinstance(c.type, JSON))
    if dialect == "postgresql":
        marks = ", ".join("%s::jsonb" if n in json_cols else "%s" for n in columns)
    else:
        marks = ", ".join("?" for _ in columns)
    quoted = ", ".join(f'"{n}"' for n in columns)
    if replace:
        updates = ", ".join(f'"{n}" = excluded."{n}"' for n in columns if n not in conflict)
        action = f"DO UPDATE SET {updates}"
    else:
        action = "DO NOTHING"
    found = _Upsert(
        insert=f'INSERT INTO "{table.name}" ({quoted}) VALUES',
        row_marks=f"({marks})",
        on_conflict=f"ON CONFLICT ({', '.join(conflict)}) {action}",
        names=names,
        take=operator.itemgetter(*names),
        io_positions=tuple(i for i, n in enumerate(names) if kind != "score" and n in _IO_COLUMNS),
        json_positions=tuple(i for i, n in enumerate(names) if n in json_cols),
        tokens=tokens,
    )
    _UPSERTS[key] = found
    return found


def _upsert_params(upsert: _Upsert, rows: Iterable[dict[str, Any]]) -> list[Any]:
    """The positional parameters of ``rows``, row after row in one flat list (what a multi-row statement binds):
    one pass per row, no intermediate dict."""
    names, take, io_positions, json_positions = (
        upsert.names,
        upsert.take,
        upsert.io_positions,
        upsert.json_positions,
    )
    tokens = upsert.tokens
    params = []
    for row in rows:
        try:
            values = list(take(row))
        except KeyError:  # a row without some columns: they are written as NULL
            values = [row.get(n) for n in names]
        for i in io_positions:
            value = values[i]
            if value is not None and not isinstance(value, str):  # strings are stored raw (see load_io)
                values[i] = _json_text(value)
        for i in json_positions:
            value = values[i]
            if value is not None:
                values[i] = _json_text(value)
        params += values
        if tokens:
            params += token_columns(row.get("usage_details"))
    return params


def _json_text(value: Any) -> str:
    try:
        return orjson.dumps(value).decode()
    except orjson.JSONEncodeError:  # a key that is not a string (see above): the slower option handles it
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def _block_rows(conn: Connection, columns: int) -> int:
    """The most rows one SQLite statement of this table takes: _MAX_BLOCK_ROWS, unless the library binds fewer
    variables per statement than that needs."""
    global _sqlite_variable_limit
    if _sqlite_variable_limit is None:
        driver: Any = conn.connection.driver_connection
        dbapi: Any = conn.dialect.dbapi
        _sqlite_variable_limit = driver.getlimit(dbapi.SQLITE_LIMIT_VARIABLE_NUMBER)
    return max(1, min(_MAX_BLOCK_ROWS, _sqlite_variable_limit // columns))


def _execute_upsert(conn: Connection, upsert: _Upsert, params: list[Any], count: int) -> None:
    """Write ``count`` rows given as flat ``params``."""
    width = len(params) // count
    if conn.dialect.name != "sqlite":
        conn.exec_driver_sql(upsert.sql, [tuple(params[i : i + width]) for i in range(0, len(params), width)])
        return
    most = _block_rows(conn, width)
    done = 0
    while done < count:
        rows = min(most, 1 << ((count - done).bit_length() - 1))  # the largest power of two left
        conn.exec_driver_sql(upsert.sql_for(rows), tuple(params[done * width : (done + rows) * width]))
        done += rows


def upsert_rows(conn: Connection, kind: str, rows: list[dict[str, Any]]) -> None:
    """Insert or replace whole rows (the merge already folded the stored state into them); a column missing
    from a row is written as NULL. Rows are written in order: of two rows with the same key, the later wins."""
    if rows:
        upsert = _upsert_for(conn.dialect.name, kind)
        _execute_upsert(conn, upsert, _upsert_params(upsert, rows), len(rows))


def write_entity_rows(
    conn: Connection, kind: str, rows: list[dict[str, Any]], new_ids: Container[str]
) -> set[str]:
    """Write the merged rows of traces, observations or scores; ``new_ids``: the rows whose entity had no
    stored row when ``get_rows`` read. Returns the ids of rows not written, because another process's writer
    stored that entity meanwhile: the caller reads that row (``get_rows`` locks it now) and merges again.

    On Postgres a new row is inserted ON CONFLICT DO NOTHING: an insert racing another transaction's insert of
    the same key waits for it, and once that one has committed, this one writes nothing (DO UPDATE would
    overwrite the other's merged events with a merge that never saw them). The other rows are locked by
    ``get_rows``, so they are upserted as they are. On SQLite nothing can race the writer: all rows are
    upserted, nothing is returned.
    """
    if not rows:
        return set()
    if conn.dialect.name != "postgresql":
        upsert_rows(conn, kind, rows)
        return set()
    # new rows in key order, as get_rows locks: two writers inserting the same keys wait for each other in turn
    fresh = sorted((row for row in rows if row["id"] in new_ids), key=operator.itemgetter("id"))
    upsert_rows(conn, kind, [row for row in rows if row["id"] not in new_ids] if fresh else rows)
    if not fresh:
        return set()
    upsert = _upsert_for("postgresql", kind)
    params = _upsert_params(upsert, fresh)
    width = len(params) // len(fresh)
    written: set[str] = set()
    driver: Any = conn.connection.driver_connection
    cursor = driver.cursor()
    try:
        cursor.executemany(
            _insert_new_sql(upsert),
            [tuple(params[i : i + width]) for i in range(0, len(params), width)],
            returning=True,
        )
        while True:  # one result per row: its id when inserted, nothing when another process stored it first
            written.update(r[0] for r in cursor.fetchall())
            if not cursor.nextset():
                break
    finally:
        cursor.close()
    return {row["id"] for row in fresh} - written


def _insert_new_sql(upsert: _Upsert) -> str:
    conflict = upsert.on_conflict.split(") ", 1)[0] + ")"  # ON CONFLICT (project_id, id)
    return f"{upsert.insert} {upsert.row_marks} {conflict} DO NOTHING RETURNING id"


def insert_events(conn: Connection, events: list[dict[str, Any]]) -> None:
    """Append to the raw event log; a re-sent event id replaces its earlier copy."""
    upsert_rows(conn, "event", events)


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
    """Insert sessions that do not exist yet (whole rows); existing ones are left as they are. In key order: on
    Postgres an insert waits for another writer's uncommitted insert of the same key, and two writers inserting
    the same two sessions in opposite orders would deadlock."""
    upsert_rows(conn, "session", sorted(sessions, key=_session_key))


def _session_key(session: dict[str, Any]) -> tuple[str, str]:
    return session["project_id"], session["id"]


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
        conn.execute(
            delete(observations).where(
                observations.c.project_id == project_id, observations.c.trace_id.in_(chunk)
            )
        )
        conn.execute(delete(scores).where(scores.c.project_id == project_id, scores.c.trace_id.in_(chunk)))
        conn.execute(delete(traces).where(traces.c.project_id == project_id, traces.c.id.in_(chunk)))


def delete_scores(conn: Connection, project_id: str, score_ids: Sequence[str]) -> None:
    for chunk in _chunks(list(score_ids)):
        keys = conn.execute(
            select(scores.c.created_at, scores.c.id).where(
                scores.c.project_id == project_id, scores.c.id.in_(chunk)
            )
        )
        _delete_logged(conn, project_id, "score", [tuple(r) for r in keys])
        conn.execute(delete(scores).where(scores.c.project_id == project_id, scores.c.id.in_(chunk)))
