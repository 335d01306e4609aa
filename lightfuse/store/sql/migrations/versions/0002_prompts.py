"""prompt management: prompts, prompt_dependencies, prompt_revisions

Revision ID: 0002_prompts
Revises: 0001

Written by hand against lightfuse/store/sql/tables_prompts.py. Only CREATE TABLE / CREATE INDEX, which both
SQLite and Postgres run as is, so no batch mode is needed.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002_prompts"
down_revision = "0001"
branch_labels = None
depends_on = None


def _json() -> sa.types.TypeEngine:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "prompts",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("project_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(length=8), nullable=False),
        sa.Column("prompt", _json(), nullable=False),
        sa.Column("config", _json(), nullable=False),
        sa.Column("labels", _json(), nullable=False),
        sa.Column("tags", _json(), nullable=False),
        sa.Column("commit_message", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_prompts_project_id_projects"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prompts")),
        sa.UniqueConstraint("project_id", "name", "version", name=op.f("uq_prompts_project_id_name_version")),
    )
    op.create_index(op.f("ix_prompts_project_id_updated_at"), "prompts", ["project_id", "updated_at"])

    op.create_table(
        "prompt_dependencies",
        sa.Column("dependency_rowid", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("project_id", sa.String(length=64), nullable=False),
        sa.Column("parent_id", sa.String(length=64), nullable=False),
        sa.Column("child_name", sa.Text(), nullable=False),
        sa.Column("child_version", sa.Integer(), nullable=True),
        sa.Column("child_label", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["parent_id"],
            ["prompts.id"],
            name=op.f("fk_prompt_dependencies_parent_id_prompts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("dependency_rowid", name=op.f("pk_prompt_dependencies")),
    )
    op.create_index(
        op.f("ix_prompt_dependencies_project_id_child_name"),
        "prompt_dependencies",
        ["project_id", "child_name"],
    )
    op.create_index(op.f("ix_prompt_dependencies_parent_id"), "prompt_dependencies", ["parent_id"])

    op.create_table(
        "prompt_revisions",
        sa.Column("project_id", sa.String(length=64), nullable=False),
        sa.Column("revision", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_prompt_revisions_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("project_id", name=op.f("pk_prompt_revisions")),
    )


def downgrade() -> None:
    op.drop_table("prompt_revisions")
    op.drop_index(op.f("ix_prompt_dependencies_parent_id"), table_name="prompt_dependencies")
    op.drop_index(op.f("ix_prompt_dependencies_project_id_child_name"), table_name="prompt_dependencies")
    op.drop_table("prompt_dependencies")
    op.drop_index(op.f("ix_prompts_project_id_updated_at"), table_name="prompts")
    op.drop_table("prompts")
