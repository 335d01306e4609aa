"""Alembic environment: one migration tree for SQLite (batch mode) and Postgres."""

from alembic import context

# every table module registers on the shared metadata; import them all so autogenerate sees the full schema
from lightfuse.store.sql import (  # noqa: F401
    llm_connections,
    tables_admin,
    tables_automations,
    tables_datasets,
    tables_integrations,
    tables_prompts,
)
from lightfuse.store.sql.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only when someone runs the alembic CLI by hand
    raise RuntimeError("run migrations through `lightfuse migrate`")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
