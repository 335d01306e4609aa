"""Every JSON value, through every JSON column of the schema, on SQLite and Postgres (issue #15, item 4).

A JSON column must give back what was stored, whatever the JSON type: SQLite hands the JSON text of a bare
number back as an int or a float (a column declared JSON has NUMERIC affinity), psycopg hands JSONB back
decoded, and a read must survive both. The columns are found in the schema, so a new JSON column is covered
without touching this test; each gets a minimal row (foreign keys off for the test connection) holding the
value, read back through the engine as the services read it.
"""

from __future__ import annotations

import math
import uuid

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lightfuse.store.sql.tables_datasets  # noqa: F401 - registers the dataset tables on the metadata
import lightfuse.store.sql.tables_prompts  # noqa: F401 - registers the prompt tables on the metadata
from lightfuse.store.sql import migrate
from lightfuse.store.sql.database import make_engine
from lightfuse.store.sql.tables import Json, metadata

# Strings without NUL: Postgres JSONB cannot hold \u0000 (the writers must refuse or strip it; not a read
# question). Integers in the signed 64-bit range: beyond it SQLite keeps a REAL, as JavaScript's JSON.parse
# would, and orjson refuses to write integers past 64 bits at all.
_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12)
_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _text
)
JSON_VALUES = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=6,
)


def _json_columns() -> list[tuple[sa.Table, sa.Column]]:
    return [
        (t, c)
        for t in metadata.sorted_tables
        for c in t.columns
        if c.type is Json or c.type == Json or isinstance(c.type, sa.JSON)
    ]


def _filler(column: sa.Column):
    """A value for a NOT NULL column this test does not care about."""
    kind = column.type.python_type if not isinstance(column.type, sa.JSON) else dict
    if kind is str:
        return uuid.uuid4().hex[: getattr(column.type, "length", None) or 32]
    if kind is bool:
        return False
    if kind in (int, float):
        return 1
    if kind is dict:
        return {}
    raise AssertionError(f"no filler for {column.table.name}.{column.name} ({column.type})")


def _row(table: sa.Table, column: sa.Column, value) -> dict:
    row = {
        c.name: _filler(c)
        for c in table.columns
        if not c.nullable and c.default is None and c.server_default is None and c.autoincrement is not True
    }
    for c in table.primary_key.columns:
        row.setdefault(c.name, _filler(c))
    row[column.name] = value
    return row


def _same(a, b) -> bool:
    """JSON equality: 1 == 1.0 (SQLite keeps an integral REAL as an INTEGER), -0.0 == 0."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b or math.isclose(a, b, rel_tol=1e-15)
    return a == b


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request, tmp_path):
    url = (
        f"sqlite:///{tmp_path / 'j.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("pg_database_url")
    )
    eng = make_engine(url)
    migrate.upgrade(eng)
    yield eng
    eng.dispose()


def _no_foreign_keys(conn: sa.Connection) -> None:
    if conn.dialect.name == "sqlite":
        # outside any transaction (inside one SQLite ignores the pragma): on the driver connection itself
        conn.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")
    else:
        conn.exec_driver_sql("SET session_replication_role = replica")
        conn.commit()


def test_the_schema_has_json_columns():
    names = {f"{t.name}.{c.name}" for t, c in _json_columns()}
    assert {
        "dataset_items.input",
        "dataset_items.expected_output",
        "traces.metadata",
        "prompts.config",
    } <= names


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=JSON_VALUES)
def test_every_json_value_reads_back_from_every_json_column(engine, value):
    with engine.connect() as conn:
        _no_foreign_keys(conn)
        for table, column in _json_columns():
            row = _row(table, column, value)
            key = [table.c[c.name] == row[c.name] for c in table.primary_key.columns]
            conn.execute(sa.delete(table))
            conn.execute(sa.insert(table).values(**row))
            conn.commit()
            stored = conn.execute(sa.select(table.c[column.name]).where(*key)).scalar_one()
            conn.commit()
            assert _same(stored, value), (table.name, column.name, value, stored)
