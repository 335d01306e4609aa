"""single sign-on: identities linked to users, and sign-ins waiting for the identity provider's answer

Revision ID: 0009_sso_accounts
Revises: 0008_invitations_audit

Issue #16: a user signed in through OpenID Connect / OAuth2 is found again by (provider, subject), so a later
email change at the identity provider still reaches the same account. A started sign-in keeps its state,
nonce and PKCE verifier server-side until the callback consumes it (once). Written by hand; works on SQLite
and Postgres.
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_sso_accounts"
down_revision = "0008_invitations_audit"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sso_accounts",
        sa.Column("provider", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("email", sa.String(320), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("last_login_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_sso_accounts_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("provider", "subject", name=op.f("pk_sso_accounts")),
    )
    op.create_index(op.f("ix_sso_accounts_user_id"), "sso_accounts", ["user_id"], unique=False)
    op.create_table(
        "sso_login_states",
        sa.Column("state_hash", sa.String(64), nullable=False),
        sa.Column("binding_hash", sa.String(64), nullable=False),
        sa.Column("provider", sa.String(64), nullable=False),
        sa.Column("nonce", sa.String(128), nullable=False),
        sa.Column("code_verifier", sa.String(128), nullable=False),
        sa.Column("next_path", sa.String(2048), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("state_hash", name=op.f("pk_sso_login_states")),
    )
    op.create_index(op.f("ix_sso_login_states_expires_at"), "sso_login_states", ["expires_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_sso_login_states_expires_at"), table_name="sso_login_states")
    op.drop_table("sso_login_states")
    op.drop_index(op.f("ix_sso_accounts_user_id"), table_name="sso_accounts")
    op.drop_table("sso_accounts")
