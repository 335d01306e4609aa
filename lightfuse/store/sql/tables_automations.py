"""Automation tables (migration 0012): webhook automations, their outbox of deliveries, and the attempt log.

``automation_deliveries`` is an outbox: a row is written in the same transaction as the change it announces
(services/common/change_events.py) and sent later by the delivery worker, so a rolled-back change sends
nothing and a committed one is sent even if the process dies in between. ``status`` moves
pending -> sending (leased to one worker until ``lease_until``) -> succeeded | failed (or back to pending with
a later ``next_attempt_at`` after a failed attempt). The signing secret is stored AES-256-GCM encrypted.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, ForeignKey, Index, Integer, String, Table, Text

from lightfuse.store.sql.tables import Json, metadata

automations = Table(
    "automations",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("project_id", String(64), ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(255), nullable=False),
    # trigger: prompt-version events, optionally one prompt name only
    Column("event_source", String(32), nullable=False),
    Column("event_actions", Json, nullable=False),
    Column("prompt_name", String(255), nullable=True),
    # action: the webhook
    Column("url", Text, nullable=False),
    # header name -> its value AES-256-GCM encrypted (values often carry credentials)
    Column("headers", Json, nullable=False),
    Column("secret_encrypted", Text, nullable=False),
    Column("display_secret", String(32), nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("consecutive_failures", Integer, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Index(None, "project_id"),
)

automation_deliveries = Table(
    "automation_deliveries",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("project_id", String(64), ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("automation_id", String(64), ForeignKey("automations.id", ondelete="CASCADE"), nullable=False),
    Column("action", String(32), nullable=False),
    Column("payload", Json, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", BigInteger, nullable=False),
    Column("lease_owner", String(64), nullable=True),
    Column("lease_until", BigInteger, nullable=True),
    Column("last_status_code", Integer, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    # the worker's claim query: due rows by status and time
    Index(None, "status", "next_attempt_at"),
    Index(None, "automation_id", "created_at"),
    Index(None, "project_id"),
)

automation_attempts = Table(
    "automation_attempts",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("project_id", String(64), ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column(
        "delivery_id",
        String(64),
        ForeignKey("automation_deliveries.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("attempt", Integer, nullable=False),
    Column("started_at", BigInteger, nullable=False),
    Column("duration_ms", Integer, nullable=False),
    Column("status_code", Integer, nullable=True),
    Column("error", Text, nullable=True),
    Index(None, "delivery_id", "attempt"),
    Index(None, "project_id"),
)
