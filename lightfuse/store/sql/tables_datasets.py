"""Schema of datasets, dataset runs, media, comments and annotation queues (migration 0003_datasets).

The tables join the shared ``metadata`` of ``tables.py`` so that one Alembic environment and the migration
test see them. Times are epoch milliseconds like everywhere else.

Dataset items are versioned (slowly changing dimension, type 2): every write closes the current row
(``valid_to`` = the new row's ``valid_from``) and inserts a new one, so the item set "as of" any instant can be
read back. The current row of an item is the one with ``valid_to IS NULL``; a partial unique index keeps it
unique even under concurrent writers. A delete writes a tombstone row (``is_deleted``).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from lightfuse.store.sql.tables import Json, metadata


def _times() -> list[Column]:
    return [
        Column("created_at", BigInteger, nullable=False),
        Column("updated_at", BigInteger, nullable=False),
    ]


def _project() -> Column:
    return Column("project_id", String(64), ForeignKey("projects.id", ondelete="CASCADE"), nullable=False)


datasets = Table(
    "datasets",
    metadata,
    Column("id", String(64), primary_key=True),
    _project(),
    Column("name", String(1000), nullable=False),
    Column("description", Text, nullable=True),
    Column("metadata", Json, nullable=True),
    Column("input_schema", Json, nullable=True),
    Column("expected_output_schema", Json, nullable=True),
    *_times(),
    UniqueConstraint("project_id", "name"),
)

dataset_items = Table(
    "dataset_items",
    metadata,
    Column("project_id", String(64), nullable=False),
    Column("id", String(255), nullable=False),
    Column("valid_from", BigInteger, nullable=False),
    Column("valid_to", BigInteger, nullable=True),
    Column("dataset_id", String(64), ForeignKey("datasets.id", ondelete="CASCADE"), nullable=False),
    Column("status", String(16), nullable=False),
    Column("input", Json, nullable=True),
    Column("expected_output", Json, nullable=True),
    Column("metadata", Json, nullable=True),
    Column("source_trace_id", String(800), nullable=True),
    Column("source_observation_id", String(800), nullable=True),
    Column("is_deleted", Boolean, nullable=False, default=False),
    # created_at is the item's first creation and is carried over to every later version
    *_times(),
    PrimaryKeyConstraint("project_id", "id", "valid_from"),
    Index(
        "uq_dataset_items_current",
        "project_id",
        "id",
        unique=True,
        sqlite_where=text("valid_to IS NULL"),
        postgresql_where=text("valid_to IS NULL"),
    ),
    Index(None, "dataset_id", "valid_from"),
    Index(None, "project_id", "source_trace_id"),
)

dataset_runs = Table(
    "dataset_runs",
    metadata,
    Column("id", String(64), primary_key=True),
    _project(),
    Column("dataset_id", String(64), ForeignKey("datasets.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(1000), nullable=False),
    Column("description", Text, nullable=True),
    Column("metadata", Json, nullable=True),
    *_times(),
    UniqueConstraint("dataset_id", "name"),
)

dataset_run_items = Table(
    "dataset_run_items",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("project_id", String(64), nullable=False),
    Column("dataset_run_id", String(64), ForeignKey("dataset_runs.id", ondelete="CASCADE"), nullable=False),
    Column("dataset_id", String(64), nullable=False),
    Column("dataset_item_id", String(255), nullable=False),
    Column("trace_id", String(800), nullable=False),
    Column("observation_id", String(800), nullable=True),
    *_times(),
    Index(None, "dataset_run_id", "created_at"),
    Index(None, "project_id", "dataset_item_id"),
)

media = Table(
    "media",
    metadata,
    Column("project_id", String(64), ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("id", String(64), nullable=False),
    Column("sha_256_hash", String(44), nullable=False),
    Column("bucket_path", Text, nullable=False),
    Column("content_type", String(255), nullable=False),
    Column("content_length", BigInteger, nullable=False),
    Column("uploaded_at", BigInteger, nullable=True),
    Column("upload_http_status", Integer, nullable=True),
    Column("upload_http_error", Text, nullable=True),
    Column("upload_time_ms", BigInteger, nullable=True),
    *_times(),
    PrimaryKeyConstraint("project_id", "id"),
    UniqueConstraint("project_id", "sha_256_hash"),
)

# Where a media object is referenced. observation_id is '' (not NULL) for trace-level media so that it can be
# part of the primary key on both databases.
trace_media = Table(
    "trace_media",
    metadata,
    Column("project_id", String(64), nullable=False),
    Column("media_id", String(64), nullable=False),
    Column("trace_id", String(800), nullable=False),
    Column("observation_id", String(800), nullable=False, default=""),
    Column("field", String(32), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    PrimaryKeyConstraint("project_id", "media_id", "trace_id", "observation_id", "field"),
    Index(None, "project_id", "trace_id"),
)

dataset_item_media = Table(
    "dataset_item_media",
    metadata,
    Column("project_id", String(64), nullable=False),
    Column("media_id", String(64), nullable=False),
    Column("dataset_id", String(64), nullable=False),
    Column("dataset_item_id", String(255), nullable=False),
    Column("field", String(32), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    PrimaryKeyConstraint("project_id", "media_id", "dataset_item_id", "field"),
)

comments = Table(
    "comments",
    metadata,
    Column("id", String(64), primary_key=True),
    _project(),
    Column("object_type", String(16), nullable=False),
    Column("object_id", String(800), nullable=False),
    Column("content", Text, nullable=False),
    Column("author_user_id", String(64), nullable=True),
    *_times(),
    Index(None, "project_id", "object_type", "object_id"),
    Index(None, "project_id", "created_at"),
)

annotation_queues = Table(
    "annotation_queues",
    metadata,
    Column("id", String(64), primary_key=True),
    _project(),
    Column("name", String(255), nullable=False),
    Column("description", Text, nullable=True),
    Column("score_config_ids", Json, nullable=False),
    *_times(),
    UniqueConstraint("project_id", "name"),
)

annotation_queue_items = Table(
    "annotation_queue_items",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("project_id", String(64), nullable=False),
    Column("queue_id", String(64), ForeignKey("annotation_queues.id", ondelete="CASCADE"), nullable=False),
    Column("object_id", String(800), nullable=False),
    Column("object_type", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("locked_at", BigInteger, nullable=True),
    Column("locked_by_user_id", String(64), nullable=True),
    Column("annotator_user_id", String(64), nullable=True),
    Column("completed_at", BigInteger, nullable=True),
    *_times(),
    Index(None, "queue_id", "created_at"),
)

annotation_queue_assignments = Table(
    "annotation_queue_assignments",
    metadata,
    Column("project_id", String(64), nullable=False),
    Column("queue_id", String(64), ForeignKey("annotation_queues.id", ondelete="CASCADE"), nullable=False),
    Column("user_id", String(64), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    PrimaryKeyConstraint("queue_id", "user_id"),
)
