"""Migrations apply and revert cleanly on SQLite and Postgres."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from lightfuse.store.sql import migrate
from lightfuse.store.sql.database import make_engine
from lightfuse.store.sql.tables import metadata


@pytest.mark.parametrize("dialect", ["sqlite", "postgres"])
def test_up_down_up(dialect, tmp_path, request):
    url = (
        f"sqlite:///{tmp_path / 'm.db'}"
        if dialect == "sqlite"
        else request.getfixturevalue("pg_database_url")
    )
    engine = make_engine(url)
    migrate.upgrade(engine)
    tables = set(sa.inspect(engine).get_table_names())
    assert set(metadata.tables) <= tables
    migrate.downgrade(engine, "base")
    assert set(sa.inspect(engine).get_table_names()) <= {"alembic_version"}
    migrate.upgrade(engine)
    assert set(metadata.tables) <= set(sa.inspect(engine).get_table_names())
    engine.dispose()


@pytest.mark.parametrize("dialect", ["sqlite", "postgres"])
def test_event_log_rekey_keeps_events(dialect, tmp_path, request):
    """0006 re-keys the event log by the entity's created_at; logged events of existing rows keep replaying."""
    url = (
        f"sqlite:///{tmp_path / 'm.db'}"
        if dialect == "sqlite"
        else request.getfixturevalue("pg_database_url")
    )
    engine = make_engine(url)
    migrate.upgrade(engine, "0005_dashboard_indexes")
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO traces (project_id, id, timestamp, environment, public, bookmarked, tags, metadata, "
            "created_at, updated_at, last_event_ts) VALUES ('p', 't1', 1, 'default', false, false, '[]', '{}', "
            "1234, 1234, 5)"
        )
        for entity_id, event_id in (("t1", "e1"), ("gone", "e2")):
            conn.exec_driver_sql(
                "INSERT INTO ingestion_events (project_id, entity_kind, entity_id, event_id, event_type, event_ts, "
                f"body, received_at) VALUES ('p', 'trace', '{entity_id}', '{event_id}', 'trace-create', 5, "
                '\'{"id": "x"}\', 6)'
            )
    migrate.upgrade(engine)
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT entity_id, entity_created_at, event_id FROM ingestion_events ORDER BY event_id"
        ).all()
    assert [tuple(r) for r in rows] == [("t1", 1234, "e1"), ("gone", 0, "e2")]
    migrate.downgrade(engine, "0005_dashboard_indexes")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM ingestion_events").scalar() == 2
    engine.dispose()
