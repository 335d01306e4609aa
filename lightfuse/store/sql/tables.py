"""SQL schema for SQLite and Postgres (SQLAlchemy Core). Alembic migrations are written against these.

Times are UTC epoch milliseconds in BIGINT columns: portable, compact, index-friendly, and the merge code works
on integers anyway. JSON columns are JSON on SQLite and JSONB on Postgres. Trace input/output are TEXT holding
JSON: they are large, never queried by path, and only searched as text.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB

Json = JSON().with_variant(JSONB(), "postgresql")

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


def _times() -> list[Column]:
    return [
        Column("created_at", BigInteger, nullable=False),
        Column("updated_at", BigInteger, nullable=False),
    ]


organizations = Table(
    "organizations",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(255), nullable=False),
    Column("metadata", Json, nullable=True),
    *_times(),
)

users = Table(
    "users",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("email", String(320), nullable=False, unique=True),
    Column("name", String(255), nullable=True),
    Column("password_hash", String(255), nullable=True),
    Column("admin", Boolean, nullable=False, default=False),
    *_times(),
)

# Browser sessions (0007): the cookie holds a random token, the table its SHA-256, so a copied cookie stops
# working once the row is revoked (sign-out, password change, "sign out everywhere") and a leaked table does
# not hand out live sessions.
web_sessions = Table(
    "web_sessions",
    metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("user_id", String(64), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("last_seen_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("revoked_at", BigInteger, nullable=True),
    Index(None, "user_id"),
    Index(None, "expires_at"),
)

# Failed password attempts per throttle key (a hashed email or a client address, 0007): kept in the database so
# that every replica sees the same counts. Rows of quiet keys are pruned, so the table stays small.
auth_throttle = Table(
    "auth_throttle",
    metadata,
    Column("key", String(80), primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("last_failure_at", BigInteger, nullable=False),
    Column("locked_until", BigInteger, nullable=False),
    Index(None, "last_failure_at"),
)

# Identities from SSO providers linked to users (0008): found by (provider, subject) at every sign-in, so an
# email changed at the identity provider still reaches the same account.
sso_accounts = Table(
    "sso_accounts",
    metadata,
    Column("provider", String(64), nullable=False),
    Column("subject", String(255), nullable=False),
    Column("user_id", String(64), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("email", String(320), nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("last_login_at", BigInteger, nullable=False),
    PrimaryKeyConstraint("provider", "subject"),
    Index(None, "user_id"),
)

# Started SSO sign-ins (0008): state (hashed), the browser binding (hashed), nonce and PKCE verifier, kept
# until the callback consumes the row (once) or it expires after a few minutes.
sso_login_states = Table(
    "sso_login_states",
    metadata,
    Column("state_hash", String(64), primary_key=True),
    Column("binding_hash", String(64), nullable=False),
    Column("provider", String(64), nullable=False),
    Column("nonce", String(128), nullable=False),
    Column("code_verifier", String(128), nullable=False),
    Column("next_path", String(2048), nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Index(None, "expires_at"),
)

organization_memberships = Table(
    "organization_memberships",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("org_id", String(64), ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False),
    Column("user_id", String(64), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("role", String(16), nullable=False),
    *_times(),
    UniqueConstraint("org_id", "user_id"),
)

projects = Table(
    "projects",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("org_id", String(64), ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(255), nullable=False),
    Column("metadata", Json, nullable=True),
    Column("retention_days", Integer, nullable=True),
    Column("deleted_at", BigInteger, nullable=True),
    *_times(),
    Index(None, "org_id"),
)

project_memberships = Table(
    "project_memberships",
    metadata,
    Column("project_id", String(64), ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("user_id", String(64), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("role", String(16), nullable=False),
    *_times(),
    PrimaryKeyConstraint("project_id", "user_id"),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("project_id", String(64), ForeignKey("projects.id", ondelete="CASCADE"), nullable=True),
    Column("organization_id", String(64), ForeignKey("organizations.id", ondelete="CASCADE"), nullable=True),
    Column("scope", String(16), nullable=False),
    Column("public_key", String(128), nullable=False, unique=True),
    # hex SHA-256 of the secret keyed by SALT; the secret itself is never stored
    Column("secret_hash", String(64), nullable=False, unique=True),
    Column("display_secret_key", String(32), nullable=False),
    Column("note", Text, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("last_used_at", BigInteger, nullable=True),
    Column("expires_at", BigInteger, nullable=True),
)

models = Table(
    "models",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("project_id", String(64), ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("model_name", String(255), nullable=False),
    Column("match_pattern", Text, nullable=False),
    Column("start_date", BigInteger, nullable=True),
    Column("unit", String(32), nullable=True),
    Column("tokenizer_id", String(64), nullable=True),
    Column("tokenizer_config", Json, nullable=True),
    # [{id, name, isDefault, priority, conditions, prices}] - small, always read whole
    Column("pricing_tiers", Json, nullable=False),
    *_times(),
    UniqueConstraint("project_id", "model_name"),
)

score_configs = Table(
    "score_configs",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("project_id", String(64), ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(64), nullable=False),
    Column("data_type", String(16), nullable=False),
    Column("is_archived", Boolean, nullable=False, default=False),
    Column("min_value", Float, nullable=True),
    Column("max_value", Float, nullable=True),
    Column("categories", Json, nullable=True),
    Column("description", Text, nullable=True),
    *_times(),
    Index(None, "project_id"),
)

trace_sessions = Table(
    "trace_sessions",
    metadata,
    Column("project_id", String(64), nullable=False),
    Column("id", String(800), nullable=False),
    Column("environment", String(64), nullable=False),
    Column("bookmarked", Boolean, nullable=False, default=False),
    Column("public", Boolean, nullable=False, default=False),
    Column("created_at", BigInteger, nullable=False),
    PrimaryKeyConstraint("project_id", "id"),
    Index(None, "project_id", "created_at"),
)

# --- tracing data -------------------------------------------------------------------------------------------

traces = Table(
    "traces",
    metadata,
    Column("project_id", String(64), nullable=False),
    Column("id", String(800), nullable=False),
    Column("timestamp", BigInteger, nullable=False),
    Column("name", Text, nullable=True),
    Column("user_id", Text, nullable=True),
    Column("session_id", Text, nullable=True),
    Column("release", Text, nullable=True),
    Column("version", Text, nullable=True),
    Column("environment", String(64), nullable=False),
    Column("public", Boolean, nullable=False),
    Column("bookmarked", Boolean, nullable=False),
    Column("tags", Json, nullable=False),
    Column("metadata", Json, nullable=False),
    Column("input", Text, nullable=True),
    Column("output", Text, nullable=True),
    # envelope timestamps of the events that supplied input/output (see the event log note below)
    Column("input_event_ts", BigInteger, nullable=True),
    Column("output_event_ts", BigInteger, nullable=True),
    *_times(),
    Column("last_event_ts", BigInteger, nullable=False),
    PrimaryKeyConstraint("project_id", "id"),
    Index(None, "project_id", "timestamp"),
    Index(None, "project_id", "user_id"),
    Index(None, "project_id", "session_id"),
    # the trace table's name suggestions: a covering index, read in order (0004)
    Index(None, "project_id", "name"),
)

observations = Table(
    "observations",
    metadata,
    Column("project_id", String(64), nullable=False),
    Column("id", String(800), nullable=False),
    Column("trace_id", String(800), nullable=False),
    Column("type", String(16), nullable=False),
    Column("parent_observation_id", String(800), nullable=True),
    Column("start_time", BigInteger, nullable=False),
    Column("end_time", BigInteger, nullable=True),
    Column("completion_start_time", BigInteger, nullable=True),
    Column("name", Text, nullable=True),
    Column("metadata", Json, nullable=False),
    Column("level", String(16), nullable=False),
    Column("status_message", Text, nullable=True),
    Column("version", Text, nullable=True),
    Column("environment", String(64), nullable=False),
    Column("input", Text, nullable=True),
    Column("output", Text, nullable=True),
    Column("input_event_ts", BigInteger, nullable=True),
    Column("output_event_ts", BigInteger, nullable=True),
    Column("provided_model_name", Text, nullable=True),
    Column("internal_model_id", String(64), nullable=True),
    Column("model_parameters", Json, nullable=True),
    Column("provided_usage_details", Json, nullable=False),
    Column("usage_details", Json, nullable=False),
    Column("provided_cost_details", Json, nullable=False),
    Column("cost_details", Json, nullable=False),
    Column("total_cost", Float, nullable=True),
    # denormalised from usage_details so that token filters and sums need no JSON functions
    Column("input_tokens", BigInteger, nullable=False, default=0),
    Column("output_tokens", BigInteger, nullable=False, default=0),
    Column("total_tokens", BigInteger, nullable=False, default=0),
    Column("prompt_id", String(64), nullable=True),
    Column("prompt_name", Text, nullable=True),
    Column("prompt_version", Integer, nullable=True),
    Column("usage_pricing_tier_id", String(64), nullable=True),
    Column("usage_pricing_tier_name", Text, nullable=True),
    *_times(),
    Column("last_event_ts", BigInteger, nullable=False),
    PrimaryKeyConstraint("project_id", "id"),
    # a trace's observations in start order: without start_time SQLite preferred the start_time index below to
    # skip the sort and walked the whole project for one trace (0004); end_time makes trace latencies (the
    # dashboard's percentiles, the trace table's column) index-only reads (0005)
    Index(None, "project_id", "trace_id", "start_time", "end_time"),
    Index(None, "project_id", "start_time"),
    # the dashboard's usage and model latencies read only this index: distinct model names by seeks, then per
    # day one range per model in model order (a GROUP BY without a sort) and one range for the rows without a
    # model (NULL sorts first); durations from start/end_time (0005)
    Index(
        "ix_observations_project_model_time",
        "project_id",
        "provided_model_name",
        "start_time",
        "end_time",
        "input_tokens",
        "output_tokens",
        "total_tokens",
        "total_cost",
    ),
    # the prompt page's per-version metrics: the generations of one prompt name (0010)
    Index(None, "project_id", "prompt_name", "prompt_version"),
)

scores = Table(
    "scores",
    metadata,
    Column("project_id", String(64), nullable=False),
    Column("id", String(800), nullable=False),
    Column("timestamp", BigInteger, nullable=False),
    Column("name", Text, nullable=False),
    Column("value", Float, nullable=True),
    Column("string_value", Text, nullable=True),
    Column("data_type", String(16), nullable=False),
    Column("source", String(16), nullable=False),
    Column("comment", Text, nullable=True),
    Column("metadata", Json, nullable=False),
    Column("author_user_id", String(64), nullable=True),
    Column("config_id", String(64), nullable=True),
    Column("queue_id", String(64), nullable=True),
    Column("execution_trace_id", String(800), nullable=True),
    Column("trace_id", String(800), nullable=True),
    Column("observation_id", String(800), nullable=True),
    Column("session_id", String(800), nullable=True),
    Column("dataset_run_id", String(64), nullable=True),
    Column("environment", String(64), nullable=False),
    *_times(),
    Column("last_event_ts", BigInteger, nullable=False),
    PrimaryKeyConstraint("project_id", "id"),
    Index(None, "project_id", "trace_id", "timestamp"),  # same reason as observations' (0004)
    Index(None, "project_id", "timestamp"),
)

# The raw event log: every accepted ingestion event, committed with the merged rows before it is acknowledged.
# An entity's events are replayed when an older event arrives after newer ones were merged (see
# services/ingestion/pipeline.py). Bodies are kept without input/output - the bulk of the bytes - because the
# only rule IO follows is "latest truthy value", which the row answers by itself with input/output_event_ts.
# The key leads with the entity row's created_at (immutable, taken when the row is first written) rather than
# the entity id: a new entity's events then land at the end of the index instead of at a random page. Keyed by
# id, every logged event dirtied one random index page that the commit wrote whole to the WAL - about 7 KB of
# WAL per event, growing with the table (0006). Replays look entities up by (created_at, id) from their rows.
ingestion_events = Table(
    "ingestion_events",
    metadata,
    Column("project_id", String(64), nullable=False),
    Column("entity_kind", String(16), nullable=False),
    Column("entity_created_at", BigInteger, nullable=False),
    Column("entity_id", String(800), nullable=False),
    Column("event_id", String(800), nullable=False),
    Column("event_type", String(32), nullable=False),
    Column("event_ts", BigInteger, nullable=False),
    Column("body", Json, nullable=False),
    Column("received_at", BigInteger, nullable=False),
    PrimaryKeyConstraint("project_id", "entity_kind", "entity_created_at", "entity_id", "event_id"),
)
