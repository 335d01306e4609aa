"""LLM connections: per-project provider keys for the playground (issue #18)

Revision ID: 0013_llm_connections
Revises: 0012_prompt_protected_labels

The secret key and the extra header values are AES-256-GCM ciphertext text; the provider name is unique per
project (the public API upserts on it). Written by hand; works on SQLite and Postgres.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0013_llm_connections"
down_revision = "0012_prompt_protected_labels"
branch_labels = None
depends_on = None

Json = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "llm_connections",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("project_id", sa.String(64), nullable=False),
        sa.Column("provider", sa.String(255), nullable=False),
        sa.Column("adapter", sa.String(32), nullable=False),
        sa.Column("secret_key", sa.Text(), nullable=False),
        sa.Column("display_secret_key", sa.String(64), nullable=False),
        sa.Column("base_url", sa.String(2048), nullable=True),
        sa.Column("custom_models", Json, nullable=False),
        sa.Column("with_default_models", sa.Boolean(), nullable=False),
        sa.Column("extra_headers", sa.Text(), nullable=True),
        sa.Column("extra_header_keys", Json, nullable=False),
        sa.Column("config", Json, nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_llm_connections_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_llm_connections")),
        sa.UniqueConstraint("project_id", "provider", name=op.f("uq_llm_connections_project_id_provider")),
    )


def downgrade() -> None:
    op.drop_table("llm_connections")
