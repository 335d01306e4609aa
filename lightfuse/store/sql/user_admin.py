"""Invitations, password-reset tokens, the audit log, project memberships and organisation API keys.

Functions take an open Connection; the caller owns the transaction.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, delete, func, or_, select, update

from lightfuse.store.sql.tables import (
    api_keys,
    organization_memberships,
    project_memberships,
    projects,
    users,
)
from lightfuse.store.sql.tables_admin import audit_log, membership_invitations, password_reset_tokens


def _one(conn: Connection, stmt) -> dict[str, Any] | None:
    row = conn.execute(stmt).mappings().first()
    return dict(row) if row else None


# --- invitations --------------------------------------------------------------------------------------------


def create_invitation(conn: Connection, **values: Any) -> None:
    conn.execute(membership_invitations.insert().values(**values))


def get_invitation_by_token_hash(conn: Connection, token_hash: str) -> dict | None:
    return _one(conn, select(membership_invitations).where(membership_invitations.c.token_hash == token_hash))


def get_invitation(conn: Connection, org_id: str, invitation_id: str) -> dict | None:
    return _one(
        conn,
        select(membership_invitations).where(
            membership_invitations.c.id == invitation_id, membership_invitations.c.org_id == org_id
        ),
    )


def list_pending_invitations(conn: Connection, org_id: str, now: int) -> list[dict]:
    inv = membership_invitations
    stmt = (
        select(inv, projects.c.name.label("project_name"), users.c.email.label("invited_by_email"))
        .outerjoin(projects, projects.c.id == inv.c.project_id)
        .outerjoin(users, users.c.id == inv.c.invited_by_user_id)
        .where(
            inv.c.org_id == org_id,
            inv.c.accepted_at.is_(None),
            inv.c.revoked_at.is_(None),
            inv.c.expires_at > now,
        )
        .order_by(inv.c.created_at.desc())
    )
    return [dict(r) for r in conn.execute(stmt).mappings()]


def mark_invitation(conn: Connection, invitation_id: str, **values: Any) -> int:
    """Set accepted_at or revoked_at on a still-pending invitation; 0 when it was no longer pending (a second
    accept of the same link racing the first finds nothing to update)."""
    inv = membership_invitations
    stmt = (
        update(inv)
        .where(inv.c.id == invitation_id, inv.c.accepted_at.is_(None), inv.c.revoked_at.is_(None))
        .values(**values)
    )
    return conn.execute(stmt).rowcount or 0


def revoke_pending_invitations_for(conn: Connection, org_id: str, email: str, now: int) -> None:
    """A new invitation replaces the older pending ones for the same address in the same organisation."""
    inv = membership_invitations
    conn.execute(
        update(inv)
        .where(
            inv.c.org_id == org_id,
            inv.c.email == email,
            inv.c.accepted_at.is_(None),
            inv.c.revoked_at.is_(None),
        )
        .values(revoked_at=now)
    )


# --- password reset -----------------------------------------------------------------------------------------


def create_reset_token(conn: Connection, *, token_hash: str, user_id: str, now: int, expires_at: int) -> None:
    conn.execute(
        password_reset_tokens.insert().values(
            token_hash=token_hash, user_id=user_id, created_at=now, expires_at=expires_at
        )
    )


def get_reset_token(conn: Connection, token_hash: str) -> dict | None:
    return _one(conn, select(password_reset_tokens).where(password_reset_tokens.c.token_hash == token_hash))


def use_reset_token(conn: Connection, token_hash: str, now: int) -> str | None:
    """Mark a live token used and return its user id; None when it is unknown, used or expired. One UPDATE with
    the conditions in its WHERE: of two concurrent uses, one wins."""
    t = password_reset_tokens
    row = _one(
        conn,
        select(t.c.user_id).where(t.c.token_hash == token_hash, t.c.used_at.is_(None), t.c.expires_at > now),
    )
    if row is None:
        return None
    done = conn.execute(
        update(t).where(t.c.token_hash == token_hash, t.c.used_at.is_(None)).values(used_at=now)
    ).rowcount
    return row["user_id"] if done else None


def invalidate_reset_tokens(conn: Connection, user_id: str, now: int) -> None:
    t = password_reset_tokens
    conn.execute(update(t).where(t.c.user_id == user_id, t.c.used_at.is_(None)).values(used_at=now))


def delete_dead_reset_tokens(conn: Connection, before: int) -> None:
    t = password_reset_tokens
    conn.execute(delete(t).where(or_(t.c.expires_at < before, t.c.used_at < before)))


# --- audit log ----------------------------------------------------------------------------------------------


def insert_audit(conn: Connection, **values: Any) -> None:
    conn.execute(audit_log.insert().values(**values))


def list_audit(conn: Connection, org_id: str, *, limit: int, offset: int) -> tuple[list[dict], int]:
    total = conn.execute(select(func.count()).where(audit_log.c.org_id == org_id)).scalar_one()
    stmt = (
        select(audit_log)
        .where(audit_log.c.org_id == org_id)
        .order_by(audit_log.c.created_at.desc(), audit_log.c.id)
        .limit(limit)
        .offset(offset)
    )
    return [dict(r) for r in conn.execute(stmt).mappings()], total


# --- memberships --------------------------------------------------------------------------------------------


def list_project_roles(conn: Connection, org_id: str) -> list[dict]:
    """Every project membership in the organisation's live projects: project_id, user_id, role."""
    pm = project_memberships
    stmt = (
        select(pm.c.project_id, pm.c.user_id, pm.c.role)
        .join(projects, projects.c.id == pm.c.project_id)
        .where(projects.c.org_id == org_id, projects.c.deleted_at.is_(None))
    )
    return [dict(r) for r in conn.execute(stmt).mappings()]


def delete_project_membership(conn: Connection, project_id: str, user_id: str) -> int:
    pm = project_memberships
    return (
        conn.execute(delete(pm).where(pm.c.project_id == project_id, pm.c.user_id == user_id)).rowcount or 0
    )


def delete_project_memberships_in_org(conn: Connection, org_id: str, user_id: str) -> None:
    """A member who leaves the organisation keeps no project role in it."""
    pm = project_memberships
    in_org = select(projects.c.id).where(projects.c.org_id == org_id).scalar_subquery()
    conn.execute(delete(pm).where(pm.c.user_id == user_id, pm.c.project_id.in_(in_org)))


def list_org_users(
    conn: Connection, org_id: str, *, email: str | None = None, limit: int, offset: int
) -> tuple[list[dict], int]:
    """Members (with user fields), ordered by membership creation, for SCIM listing."""
    om = organization_memberships
    cond = [om.c.org_id == org_id]
    if email is not None:
        cond.append(users.c.email == email.lower())
    base = (
        select(users.c.id, users.c.email, users.c.name, users.c.created_at, users.c.updated_at, om.c.role)
        .join(om, om.c.user_id == users.c.id)
        .where(*cond)
    )
    total = conn.execute(select(func.count()).select_from(base.subquery())).scalar_one()
    rows = conn.execute(base.order_by(om.c.created_at, users.c.id).limit(limit).offset(offset)).mappings()
    return [dict(r) for r in rows], total


def get_org_user(conn: Connection, org_id: str, user_id: str) -> dict | None:
    om = organization_memberships
    return _one(
        conn,
        select(users.c.id, users.c.email, users.c.name, users.c.created_at, users.c.updated_at, om.c.role)
        .join(om, om.c.user_id == users.c.id)
        .where(om.c.org_id == org_id, users.c.id == user_id),
    )


# --- organisation API keys ----------------------------------------------------------------------------------


def list_org_api_keys(conn: Connection, org_id: str) -> list[dict]:
    stmt = (
        select(api_keys)
        .where(api_keys.c.organization_id == org_id, api_keys.c.scope == "ORGANIZATION")
        .order_by(api_keys.c.created_at)
    )
    return [dict(r) for r in conn.execute(stmt).mappings()]


def delete_org_api_key(conn: Connection, org_id: str, key_id: str) -> int:
    stmt = delete(api_keys).where(
        api_keys.c.id == key_id, api_keys.c.organization_id == org_id, api_keys.c.scope == "ORGANIZATION"
    )
    return conn.execute(stmt).rowcount or 0
