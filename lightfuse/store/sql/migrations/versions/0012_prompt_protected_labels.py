"""prompt pages: protected prompt labels, and an index for the per-version metrics of a prompt

Revision ID: 0012_prompt_protected_labels
Revises: 0011_public_api_integrations

Issue #18 item 1: a project lists labels (e.g. ``production``) that only OWNER/ADMIN may move in the UI. The
prompt page aggregates the generations of one prompt name per version, which needs observations by
(project_id, prompt_name, prompt_version) without a scan of the project. Written by hand; works on SQLite and
Postgres.
"""

import sqlalchemy as sa
from alembic import op

revision = "0012_prompt_protected_labels"
down_revision = "0011_public_api_integrations"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "prompt_protected_labels",
        sa.Column("project_id", sa.String(length=64), nullable=False),
        sa.Column("label", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_prompt_protected_labels_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("project_id", "label", name=op.f("pk_prompt_protected_labels")),
    )
    op.create_index(
        op.f("ix_observations_project_id_prompt_name_prompt_version"),
        "observations",
        ["project_id", "prompt_name", "prompt_version"],
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_observations_project_id_prompt_name_prompt_version"), table_name="observations")
    op.drop_table("prompt_protected_labels")
