"""server-side browser sessions (revocable) and the sign-in throttle's failure counts

Revision ID: 0007_web_sessions_throttle
Revises: 0006_event_log_key

Security issue #13 (findings 4 and 5): a signed cookie alone could not be revoked, so sign-out left copies valid
for 30 days; and sign-in had no limit on attempts. Both tables are small and keyed for their one lookup.
Written by hand; works on SQLite and Postgres.
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_web_sessions_throttle"
down_revision = "0006_event_log_key"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "web_sessions",
        sa.Column("id_hash", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("last_seen_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.Column("revoked_at", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_web_sessions_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id_hash", name=op.f("pk_web_sessions")),
    )
    op.create_index(op.f("ix_web_sessions_user_id"), "web_sessions", ["user_id"], unique=False)
    op.create_index(op.f("ix_web_sessions_expires_at"), "web_sessions", ["expires_at"], unique=False)
    op.create_table(
        "auth_throttle",
        sa.Column("key", sa.String(80), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failure_at", sa.BigInteger(), nullable=False),
        sa.Column("locked_until", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_auth_throttle")),
    )
    op.create_index(
        op.f("ix_auth_throttle_last_failure_at"), "auth_throttle", ["last_failure_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_auth_throttle_last_failure_at"), table_name="auth_throttle")
    op.drop_table("auth_throttle")
    op.drop_index(op.f("ix_web_sessions_expires_at"), table_name="web_sessions")
    op.drop_index(op.f("ix_web_sessions_user_id"), table_name="web_sessions")
    op.drop_table("web_sessions")
