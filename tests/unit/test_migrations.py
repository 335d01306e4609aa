"""Migrations apply and revert cleanly on SQLite and Postgres."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from lightfuse.store.sql import migrate
from lightfuse.store.sql.database import make_engine
from lightfuse.store.sql.tables import metadata


@pytest.mark.parametrize("dialect", ["sqlite", "postgres"])
def test_up_down_up(dialect, tmp_path, request):
    url = f"sqlite:///{tmp_path / 'm.db'}" if dialect == "sqlite" else request.getfixturevalue("pg_database_url")
    engine = make_engine(url)
    migrate.upgrade(engine)
    tables = set(sa.inspect(engine).get_table_names())
    assert set(metadata.tables) <= tables
    migrate.downgrade(engine, "base")
    assert set(sa.inspect(engine).get_table_names()) <= {"alembic_version"}
    migrate.upgrade(engine)
    assert set(metadata.tables) <= set(sa.inspect(engine).get_table_names())
    engine.dispose()
