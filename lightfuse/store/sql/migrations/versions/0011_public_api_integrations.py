"""public API integrations: blob-storage export settings per project, and submitted feedback

Revision ID: 0011_public_api_integrations
Revises: 0010_automations

Issue #15: `/api/public/integrations/blob-storage` stores one export configuration per project (the secret
access key AES-256-GCM encrypted; the export job itself comes with a later issue) and `POST
/api/public/feedback` keeps what clients submit. Written by hand; works on SQLite and Postgres.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0011_public_api_integrations"
down_revision = "0010_automations"
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "blob_storage_integrations",
        sa.Column("project_id", sa.String(64), nullable=False),
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("bucket_name", sa.String(255), nullable=False),
        sa.Column("endpoint", sa.Text(), nullable=True),
        sa.Column("region", sa.String(255), nullable=False),
        sa.Column("access_key_id", sa.Text(), nullable=True),
        sa.Column("secret_access_key_encrypted", sa.Text(), nullable=True),
        sa.Column("prefix", sa.Text(), nullable=False),
        sa.Column("export_frequency", sa.String(32), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("force_path_style", sa.Boolean(), nullable=False),
        sa.Column("file_type", sa.String(16), nullable=False),
        sa.Column("export_mode", sa.String(32), nullable=False),
        sa.Column("export_start_date", sa.BigInteger(), nullable=True),
        sa.Column("compressed", sa.Boolean(), nullable=False),
        sa.Column("export_source", sa.String(64), nullable=False),
        sa.Column("export_field_groups", _JSON, nullable=True),
        sa.Column("next_sync_at", sa.BigInteger(), nullable=True),
        sa.Column("last_sync_at", sa.BigInteger(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_error_at", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_blob_storage_integrations_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("project_id", name=op.f("pk_blob_storage_integrations")),
        sa.UniqueConstraint("id", name=op.f("uq_blob_storage_integrations_id")),
    )
    op.create_table(
        "feedback",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("project_id", sa.String(64), nullable=False),
        sa.Column("api_key_id", sa.String(64), nullable=True),
        sa.Column("target_type", sa.String(32), nullable=False),
        sa.Column("target", sa.String(200), nullable=False),
        sa.Column("feedback", sa.Text(), nullable=False),
        sa.Column("goal", sa.Text(), nullable=True),
        sa.Column("reference_url", sa.Text(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_feedback_project_id_projects"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feedback")),
    )
    op.create_index(
        op.f("ix_feedback_project_id_created_at"), "feedback", ["project_id", "created_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_feedback_project_id_created_at"), table_name="feedback")
    op.drop_table("feedback")
    op.drop_table("blob_storage_integrations")
