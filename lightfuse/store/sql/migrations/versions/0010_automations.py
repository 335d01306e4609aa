"""webhook automations on prompt changes: automations, the delivery outbox, the attempt log

Revision ID: 0010_automations
Revises: 0009_sso_accounts

Issue #18 item 4. The signing secret is stored AES-256-GCM encrypted. Written by hand; SQLite and Postgres.
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_automations"
down_revision = "0009_sso_accounts"
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(sa.dialects.postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "automations",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("project_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("event_source", sa.String(32), nullable=False),
        sa.Column("event_actions", _JSON, nullable=False),
        sa.Column("prompt_name", sa.String(255), nullable=True),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("headers", _JSON, nullable=False),
        sa.Column("secret_encrypted", sa.Text(), nullable=False),
        sa.Column("display_secret", sa.String(32), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_automations_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_automations")),
    )
    op.create_index(op.f("ix_automations_project_id"), "automations", ["project_id"], unique=False)
    op.create_table(
        "automation_deliveries",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("project_id", sa.String(64), nullable=False),
        sa.Column("automation_id", sa.String(64), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("payload", _JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.BigInteger(), nullable=False),
        sa.Column("lease_owner", sa.String(64), nullable=True),
        sa.Column("lease_until", sa.BigInteger(), nullable=True),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["automation_id"],
            ["automations.id"],
            name=op.f("fk_automation_deliveries_automation_id_automations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_automation_deliveries_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_automation_deliveries")),
    )
    op.create_index(
        op.f("ix_automation_deliveries_status_next_attempt_at"),
        "automation_deliveries",
        ["status", "next_attempt_at"],
        unique=False,
    )
    op.create_index(
        op.f("ix_automation_deliveries_automation_id_created_at"),
        "automation_deliveries",
        ["automation_id", "created_at"],
        unique=False,
    )
    op.create_index(
        op.f("ix_automation_deliveries_project_id"), "automation_deliveries", ["project_id"], unique=False
    )
    op.create_table(
        "automation_attempts",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("project_id", sa.String(64), nullable=False),
        sa.Column("delivery_id", sa.String(64), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.BigInteger(), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["automation_deliveries.id"],
            name=op.f("fk_automation_attempts_delivery_id_automation_deliveries"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_automation_attempts_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_automation_attempts")),
    )
    op.create_index(
        op.f("ix_automation_attempts_delivery_id_attempt"),
        "automation_attempts",
        ["delivery_id", "attempt"],
        unique=False,
    )
    op.create_index(
        op.f("ix_automation_attempts_project_id"), "automation_attempts", ["project_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_automation_attempts_project_id"), table_name="automation_attempts")
    op.drop_index(op.f("ix_automation_attempts_delivery_id_attempt"), table_name="automation_attempts")
    op.drop_table("automation_attempts")
    op.drop_index(op.f("ix_automation_deliveries_project_id"), table_name="automation_deliveries")
    op.drop_index(
        op.f("ix_automation_deliveries_automation_id_created_at"), table_name="automation_deliveries"
    )
    op.drop_index(op.f("ix_automation_deliveries_status_next_attempt_at"), table_name="automation_deliveries")
    op.drop_table("automation_deliveries")
    op.drop_index(op.f("ix_automations_project_id"), table_name="automations")
    op.drop_table("automations")
