"""User administration tables (migration 0008): invitations, password-reset tokens and the audit log.

Tokens (invitation links, password-reset links) are stored only as their SHA-256: a leaked table hands out no
working link. The audit log keeps its project in ``resource_project_id`` rather than ``project_id`` so the
project purge (which empties every table with a ``project_id`` column) does not erase the record of what was
done in a project, its deletion included; it is removed with its organisation.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, ForeignKey, Index, String, Table, Text

from lightfuse.store.sql.tables import Json, metadata

membership_invitations = Table(
    "membership_invitations",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("org_id", String(64), ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False),
    Column("email", String(320), nullable=False),
    Column("org_role", String(16), nullable=False),
    Column("project_id", String(64), ForeignKey("projects.id", ondelete="CASCADE"), nullable=True),
    Column("project_role", String(16), nullable=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("invited_by_user_id", String(64), ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("accepted_at", BigInteger, nullable=True),
    Column("revoked_at", BigInteger, nullable=True),
    Index(None, "org_id"),
    Index(None, "email"),
)

password_reset_tokens = Table(
    "password_reset_tokens",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("user_id", String(64), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("used_at", BigInteger, nullable=True),
    Index(None, "user_id"),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("org_id", String(64), ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False),
    Column("resource_project_id", String(64), nullable=True),
    # USER (a signed-in person) or API_KEY (an organisation or project key), as in Langfuse's audit_logs
    Column("actor_type", String(16), nullable=False),
    Column("actor_user_id", String(64), nullable=True),
    Column("actor_api_key_id", String(64), nullable=True),
    # the actor's email or public key at the time, so the entry stays readable after the actor is gone
    Column("actor_label", String(320), nullable=True),
    Column("action", String(64), nullable=False),
    Column("resource_type", String(32), nullable=False),
    Column("resource_id", String(320), nullable=True),
    Column("before", Json, nullable=True),
    Column("after", Json, nullable=True),
    Column("note", Text, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Index(None, "org_id", "created_at"),
)
