"""Prompt management tables (api-semantics 6). Kept apart from tables.py so the prompt feature owns its schema;
import this module wherever the tables are needed (it registers them on the shared ``metadata``).

* ``prompts``: one row per version. ``labels`` and ``tags`` are JSON string arrays, as in Langfuse: labels are
  few per version and read whole, and their ordering (given labels first, then ``latest``) is part of the
  response. That a label lives on one version of a name is kept by the service, whose writes are serialised
  per project through ``prompt_revisions``.
* ``prompt_dependencies``: the ``@@@langfusePrompt:...@@@`` tags found in a version's content, so "who depends
  on this name" is an index lookup instead of a scan of every prompt's text.
* ``prompt_revisions``: a per-project counter bumped by every prompt write. It is the cache key's epoch (a
  process can tell that another process changed the project's prompts) and the row lock that serialises
  writers: on Postgres concurrent creates cannot pick the same version number, and on SQLite the first
  statement of a write transaction takes the write lock, so a later write never fails on a stale snapshot.
* ``prompt_protected_labels``: labels of a project that only OWNER/ADMIN may set or remove in the UI (0010).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, ForeignKey, Index, Integer, String, Table, Text, UniqueConstraint

from lightfuse.store.sql.tables import Json, metadata

prompts = Table(
    "prompts",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("project_id", String(64), ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("name", Text, nullable=False),
    Column("version", Integer, nullable=False),
    Column("type", String(8), nullable=False),
    Column("prompt", Json, nullable=False),
    Column("config", Json, nullable=False),
    Column("labels", Json, nullable=False),
    Column("tags", Json, nullable=False),
    Column("commit_message", Text, nullable=True),
    Column("created_by", String(64), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    UniqueConstraint("project_id", "name", "version"),
    Index(None, "project_id", "updated_at"),
)

prompt_dependencies = Table(
    "prompt_dependencies",
    metadata,
    Column("dependency_rowid", Integer, primary_key=True, autoincrement=True),
    Column("project_id", String(64), nullable=False),
    Column("parent_id", String(64), ForeignKey("prompts.id", ondelete="CASCADE"), nullable=False),
    Column("child_name", Text, nullable=False),
    Column("child_version", Integer, nullable=True),
    Column("child_label", String(64), nullable=True),
    Index(None, "project_id", "child_name"),
    Index(None, "parent_id"),
)

prompt_revisions = Table(
    "prompt_revisions",
    metadata,
    Column("project_id", String(64), ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True),
    Column("revision", BigInteger, nullable=False),
)

prompt_protected_labels = Table(
    "prompt_protected_labels",
    metadata,
    Column("project_id", String(64), ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True),
    Column("label", String(64), primary_key=True),
    Column("created_at", BigInteger, nullable=False),
)
