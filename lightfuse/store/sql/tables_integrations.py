"""Project integrations of the public API (migration 0010): blob-storage export settings and submitted feedback.

``blob_storage_integrations`` holds one export configuration per project; its secret access key is stored only
AES-256-GCM encrypted (``services/common/secrets_box.py``). Both tables carry ``project_id``, so the project
purge removes them with the project.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, ForeignKey, Index, String, Table, Text

from lightfuse.store.sql.tables import Json, metadata

blob_storage_integrations = Table(
    "blob_storage_integrations",
    metadata,
    Column("project_id", String(64), ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True),
    Column("id", String(64), nullable=False, unique=True),
    Column("type", String(32), nullable=False),
    Column("bucket_name", String(255), nullable=False),
    Column("endpoint", Text, nullable=True),
    Column("region", String(255), nullable=False),
    Column("access_key_id", Text, nullable=True),
    Column("secret_access_key_encrypted", Text, nullable=True),
    Column("prefix", Text, nullable=False),
    Column("export_frequency", String(32), nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("force_path_style", Boolean, nullable=False),
    Column("file_type", String(16), nullable=False),
    Column("export_mode", String(32), nullable=False),
    Column("export_start_date", BigInteger, nullable=True),
    Column("compressed", Boolean, nullable=False),
    Column("export_source", String(64), nullable=False),
    Column("export_field_groups", Json, nullable=True),
    Column("next_sync_at", BigInteger, nullable=True),
    Column("last_sync_at", BigInteger, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("last_error_at", BigInteger, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

feedback = Table(
    "feedback",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("project_id", String(64), ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("api_key_id", String(64), nullable=True),
    Column("target_type", String(32), nullable=False),
    Column("target", String(200), nullable=False),
    Column("feedback", Text, nullable=False),
    Column("goal", Text, nullable=True),
    Column("reference_url", Text, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Index(None, "project_id", "created_at"),
)
