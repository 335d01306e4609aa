"""datasets, dataset runs, media, comments and annotation queues

Revision ID: 0003_datasets
Revises: 0001

A branch of its own (prompts live on another one); ``migrate.upgrade`` goes to all heads. Written by hand to
match ``store/sql/tables_datasets.py``; dropping a table drops its indexes on both databases, so the downgrade
only drops tables (children first).
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003_datasets"
down_revision = "0001"
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _times() -> list[sa.Column]:
    return [
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
    ]


def _project_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["project_id"], ["projects.id"], ondelete="CASCADE", name=op.f(f"fk_{table}_project_id_projects")
    )


def _index(table: str, *columns: str) -> None:
    op.create_index(op.f(f"ix_{table}_{'_'.join(columns)}"), table, list(columns), unique=False)


def upgrade() -> None:
    op.create_table(
        "datasets",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("project_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(1000), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("metadata", _JSON, nullable=True),
        sa.Column("input_schema", _JSON, nullable=True),
        sa.Column("expected_output_schema", _JSON, nullable=True),
        *_times(),
        _project_fk("datasets"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_datasets")),
        sa.UniqueConstraint("project_id", "name", name=op.f("uq_datasets_project_id_name")),
    )
    op.create_table(
        "dataset_items",
        sa.Column("project_id", sa.String(64), nullable=False),
        sa.Column("id", sa.String(255), nullable=False),
        sa.Column("valid_from", sa.BigInteger(), nullable=False),
        sa.Column("valid_to", sa.BigInteger(), nullable=True),
        sa.Column("dataset_id", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("input", _JSON, nullable=True),
        sa.Column("expected_output", _JSON, nullable=True),
        sa.Column("metadata", _JSON, nullable=True),
        sa.Column("source_trace_id", sa.String(800), nullable=True),
        sa.Column("source_observation_id", sa.String(800), nullable=True),
        sa.Column("is_deleted", sa.Boolean(), nullable=False),
        *_times(),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["datasets.id"],
            ondelete="CASCADE",
            name=op.f("fk_dataset_items_dataset_id_datasets"),
        ),
        sa.PrimaryKeyConstraint("project_id", "id", "valid_from", name=op.f("pk_dataset_items")),
    )
    op.create_index(
        "uq_dataset_items_current",
        "dataset_items",
        ["project_id", "id"],
        unique=True,
        sqlite_where=sa.text("valid_to IS NULL"),
        postgresql_where=sa.text("valid_to IS NULL"),
    )
    _index("dataset_items", "dataset_id", "valid_from")
    _index("dataset_items", "project_id", "source_trace_id")

    op.create_table(
        "dataset_runs",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("project_id", sa.String(64), nullable=False),
        sa.Column("dataset_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(1000), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("metadata", _JSON, nullable=True),
        *_times(),
        _project_fk("dataset_runs"),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["datasets.id"],
            ondelete="CASCADE",
            name=op.f("fk_dataset_runs_dataset_id_datasets"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dataset_runs")),
        sa.UniqueConstraint("dataset_id", "name", name=op.f("uq_dataset_runs_dataset_id_name")),
    )
    op.create_table(
        "dataset_run_items",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("project_id", sa.String(64), nullable=False),
        sa.Column("dataset_run_id", sa.String(64), nullable=False),
        sa.Column("dataset_id", sa.String(64), nullable=False),
        sa.Column("dataset_item_id", sa.String(255), nullable=False),
        sa.Column("trace_id", sa.String(800), nullable=False),
        sa.Column("observation_id", sa.String(800), nullable=True),
        *_times(),
        sa.ForeignKeyConstraint(
            ["dataset_run_id"],
            ["dataset_runs.id"],
            ondelete="CASCADE",
            name=op.f("fk_dataset_run_items_dataset_run_id_dataset_runs"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dataset_run_items")),
    )
    _index("dataset_run_items", "dataset_run_id", "created_at")
    _index("dataset_run_items", "project_id", "dataset_item_id")

    op.create_table(
        "media",
        sa.Column("project_id", sa.String(64), nullable=False),
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("sha_256_hash", sa.String(44), nullable=False),
        sa.Column("bucket_path", sa.Text(), nullable=False),
        sa.Column("content_type", sa.String(255), nullable=False),
        sa.Column("content_length", sa.BigInteger(), nullable=False),
        sa.Column("uploaded_at", sa.BigInteger(), nullable=True),
        sa.Column("upload_http_status", sa.Integer(), nullable=True),
        sa.Column("upload_http_error", sa.Text(), nullable=True),
        sa.Column("upload_time_ms", sa.BigInteger(), nullable=True),
        *_times(),
        _project_fk("media"),
        sa.PrimaryKeyConstraint("project_id", "id", name=op.f("pk_media")),
        sa.UniqueConstraint("project_id", "sha_256_hash", name=op.f("uq_media_project_id_sha_256_hash")),
    )
    op.create_table(
        "trace_media",
        sa.Column("project_id", sa.String(64), nullable=False),
        sa.Column("media_id", sa.String(64), nullable=False),
        sa.Column("trace_id", sa.String(800), nullable=False),
        sa.Column("observation_id", sa.String(800), nullable=False),
        sa.Column("field", sa.String(32), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "project_id", "media_id", "trace_id", "observation_id", "field", name=op.f("pk_trace_media")
        ),
    )
    _index("trace_media", "project_id", "trace_id")
    op.create_table(
        "dataset_item_media",
        sa.Column("project_id", sa.String(64), nullable=False),
        sa.Column("media_id", sa.String(64), nullable=False),
        sa.Column("dataset_id", sa.String(64), nullable=False),
        sa.Column("dataset_item_id", sa.String(255), nullable=False),
        sa.Column("field", sa.String(32), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "project_id", "media_id", "dataset_item_id", "field", name=op.f("pk_dataset_item_media")
        ),
    )

    op.create_table(
        "comments",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("project_id", sa.String(64), nullable=False),
        sa.Column("object_type", sa.String(16), nullable=False),
        sa.Column("object_id", sa.String(800), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("author_user_id", sa.String(64), nullable=True),
        *_times(),
        _project_fk("comments"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_comments")),
    )
    _index("comments", "project_id", "object_type", "object_id")
    _index("comments", "project_id", "created_at")

    op.create_table(
        "annotation_queues",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("project_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("score_config_ids", _JSON, nullable=False),
        *_times(),
        _project_fk("annotation_queues"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_annotation_queues")),
        sa.UniqueConstraint("project_id", "name", name=op.f("uq_annotation_queues_project_id_name")),
    )
    op.create_table(
        "annotation_queue_items",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("project_id", sa.String(64), nullable=False),
        sa.Column("queue_id", sa.String(64), nullable=False),
        sa.Column("object_id", sa.String(800), nullable=False),
        sa.Column("object_type", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("locked_at", sa.BigInteger(), nullable=True),
        sa.Column("locked_by_user_id", sa.String(64), nullable=True),
        sa.Column("annotator_user_id", sa.String(64), nullable=True),
        sa.Column("completed_at", sa.BigInteger(), nullable=True),
        *_times(),
        sa.ForeignKeyConstraint(
            ["queue_id"],
            ["annotation_queues.id"],
            ondelete="CASCADE",
            name=op.f("fk_annotation_queue_items_queue_id_annotation_queues"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_annotation_queue_items")),
    )
    _index("annotation_queue_items", "queue_id", "created_at")
    op.create_table(
        "annotation_queue_assignments",
        sa.Column("project_id", sa.String(64), nullable=False),
        sa.Column("queue_id", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["queue_id"],
            ["annotation_queues.id"],
            ondelete="CASCADE",
            name=op.f("fk_annotation_queue_assignments_queue_id_annotation_queues"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            ondelete="CASCADE",
            name=op.f("fk_annotation_queue_assignments_user_id_users"),
        ),
        sa.PrimaryKeyConstraint("queue_id", "user_id", name=op.f("pk_annotation_queue_assignments")),
    )


def downgrade() -> None:
    for table in (
        "annotation_queue_assignments",
        "annotation_queue_items",
        "annotation_queues",
        "comments",
        "dataset_item_media",
        "trace_media",
        "media",
        "dataset_run_items",
        "dataset_runs",
        "dataset_items",
        "datasets",
    ):
        op.drop_table(table)
