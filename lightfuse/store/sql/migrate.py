"""Apply or revert the Alembic migrations programmatically (no alembic.ini needed)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

from lightfuse.store.sql.database import serialise_setup

_HERE = Path(__file__).parent / "migrations"


def _config(connection) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_HERE))
    cfg.attributes["connection"] = connection
    return cfg


def upgrade(engine: Engine, revision: str = "heads") -> None:
    with engine.begin() as conn:
        serialise_setup(conn)  # another process starting on the same Postgres migrates first or after
        command.upgrade(_config(conn), revision)


def downgrade(engine: Engine, revision: str) -> None:
    with engine.begin() as conn:
        command.downgrade(_config(conn), revision)


def autogenerate(engine: Engine, message: str) -> None:  # pragma: no cover - developer tool
    with engine.begin() as conn:
        command.revision(_config(conn), message=message, autogenerate=True)
