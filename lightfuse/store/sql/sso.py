"""Linked SSO identities and pending SSO sign-ins. Functions take an open Connection."""

from __future__ import annotations

from sqlalchemy import Connection, delete, select, update

from lightfuse.store.sql.tables import (
    organization_memberships,
    organizations,
    project_memberships,
    projects,
    sso_accounts,
    sso_login_states,
    users,
)

# --- pending sign-ins ---------------------------------------------------------------------------------------


def create_login_state(conn: Connection, **values) -> None:
    conn.execute(sso_login_states.insert().values(**values))


def take_login_state(conn: Connection, state_hash: str, now: int) -> dict | None:
    """The pending sign-in with this state, deleted in the same transaction: whoever deletes the row owns it,
    so a state (and the code that came with it) is accepted once, even with replicas racing."""
    row = (
        conn.execute(select(sso_login_states).where(sso_login_states.c.state_hash == state_hash))
        .mappings()
        .first()
    )
    if row is None:
        return None
    gone = conn.execute(delete(sso_login_states).where(sso_login_states.c.state_hash == state_hash)).rowcount
    if gone != 1 or row["expires_at"] <= now:
        return None
    return dict(row)


def delete_expired_login_states(conn: Connection, now: int) -> int:
    return conn.execute(delete(sso_login_states).where(sso_login_states.c.expires_at <= now)).rowcount


# --- linked identities --------------------------------------------------------------------------------------


def get_linked_user(conn: Connection, provider: str, subject: str) -> dict | None:
    stmt = (
        select(users)
        .join(sso_accounts, sso_accounts.c.user_id == users.c.id)
        .where(sso_accounts.c.provider == provider, sso_accounts.c.subject == subject)
    )
    row = conn.execute(stmt).mappings().first()
    return dict(row) if row else None


def link_account(
    conn: Connection, *, provider: str, subject: str, user_id: str, email: str | None, now: int
) -> None:
    conn.execute(
        sso_accounts.insert().values(
            provider=provider,
            subject=subject,
            user_id=user_id,
            email=email,
            created_at=now,
            last_login_at=now,
        )
    )


def touch_account(conn: Connection, provider: str, subject: str, email: str | None, now: int) -> None:
    conn.execute(
        update(sso_accounts)
        .where(sso_accounts.c.provider == provider, sso_accounts.c.subject == subject)
        .values(email=email, last_login_at=now)
    )


def list_user_links(conn: Connection, user_id: str) -> list[dict]:
    stmt = select(sso_accounts).where(sso_accounts.c.user_id == user_id).order_by(sso_accounts.c.provider)
    return [dict(r) for r in conn.execute(stmt).mappings()]


# --- role mapping -------------------------------------------------------------------------------------------


def org_exists(conn: Connection, org_id: str) -> bool:
    return conn.execute(select(organizations.c.id).where(organizations.c.id == org_id)).first() is not None


def project_exists(conn: Connection, project_id: str) -> bool:
    stmt = select(projects.c.id).where(projects.c.id == project_id, projects.c.deleted_at.is_(None))
    return conn.execute(stmt).first() is not None


def project_org(conn: Connection, project_id: str) -> str | None:
    return conn.execute(select(projects.c.org_id).where(projects.c.id == project_id)).scalar()


def delete_project_membership(conn: Connection, project_id: str, user_id: str) -> None:
    conn.execute(
        delete(project_memberships).where(
            project_memberships.c.project_id == project_id, project_memberships.c.user_id == user_id
        )
    )


def delete_org_membership(conn: Connection, org_id: str, user_id: str) -> None:
    conn.execute(
        delete(organization_memberships).where(
            organization_memberships.c.org_id == org_id, organization_memberships.c.user_id == user_id
        )
    )
