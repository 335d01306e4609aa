"""Organisations, projects, users, memberships and API keys. Functions take an open Connection."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, delete, func, select, update

from lightfuse.store.sql.database import insert_for
from lightfuse.store.sql.tables import (
    api_keys,
    organization_memberships,
    organizations,
    project_memberships,
    projects,
    users,
)


def _one(conn: Connection, stmt) -> dict[str, Any] | None:
    row = conn.execute(stmt).mappings().first()
    return dict(row) if row else None


# --- organisations ------------------------------------------------------------------------------------------


def get_organization(conn: Connection, org_id: str) -> dict | None:
    return _one(conn, select(organizations).where(organizations.c.id == org_id))


def create_organization(conn: Connection, *, id: str, name: str, now: int, metadata: Any = None) -> None:
    conn.execute(
        organizations.insert().values(id=id, name=name, metadata=metadata, created_at=now, updated_at=now)
    )


def update_organization(conn: Connection, org_id: str, *, now: int, **values: Any) -> None:
    conn.execute(update(organizations).where(organizations.c.id == org_id).values(updated_at=now, **values))


def delete_organization(conn: Connection, org_id: str) -> None:
    conn.execute(delete(organizations).where(organizations.c.id == org_id))


def list_organizations(conn: Connection) -> list[dict]:
    """Every organisation of the instance, oldest first (the instance admin API)."""
    stmt = select(organizations).order_by(organizations.c.created_at, organizations.c.id)
    return [dict(r) for r in conn.execute(stmt).mappings()]


def list_organizations_for_user(conn: Connection, user_id: str) -> list[dict]:
    stmt = (
        select(organizations, organization_memberships.c.role)
        .join(organization_memberships, organization_memberships.c.org_id == organizations.c.id)
        .where(organization_memberships.c.user_id == user_id)
        .order_by(organizations.c.name)
    )
    return [dict(r) for r in conn.execute(stmt).mappings()]


# --- projects -----------------------------------------------------------------------------------------------


def get_project(conn: Connection, project_id: str) -> dict | None:
    return _one(conn, select(projects).where(projects.c.id == project_id, projects.c.deleted_at.is_(None)))


def get_project_with_org(conn: Connection, project_id: str) -> dict | None:
    stmt = (
        select(projects, organizations.c.name.label("org_name"))
        .join(organizations, organizations.c.id == projects.c.org_id)
        .where(projects.c.id == project_id, projects.c.deleted_at.is_(None))
    )
    return _one(conn, stmt)


def create_project(
    conn: Connection, *, id: str, org_id: str, name: str, now: int, retention_days: int | None = None
) -> None:
    conn.execute(
        projects.insert().values(
            id=id,
            org_id=org_id,
            name=name,
            metadata=None,
            retention_days=retention_days,
            created_at=now,
            updated_at=now,
        )
    )


def update_project(conn: Connection, project_id: str, *, now: int, **values: Any) -> None:
    conn.execute(update(projects).where(projects.c.id == project_id).values(updated_at=now, **values))


def delete_project(conn: Connection, project_id: str) -> None:
    conn.execute(delete(projects).where(projects.c.id == project_id))


def count_deleted_projects(conn: Connection, org_id: str) -> int:
    """Projects of the organisation that are deleted but not purged yet."""
    stmt = select(func.count()).where(projects.c.org_id == org_id, projects.c.deleted_at.is_not(None))
    return conn.execute(stmt).scalar_one()


def list_projects(conn: Connection, org_id: str) -> list[dict]:
    stmt = (
        select(projects)
        .where(projects.c.org_id == org_id, projects.c.deleted_at.is_(None))
        .order_by(projects.c.name)
    )
    return [dict(r) for r in conn.execute(stmt).mappings()]


# --- users and memberships ----------------------------------------------------------------------------------


def get_user(conn: Connection, user_id: str) -> dict | None:
    return _one(conn, select(users).where(users.c.id == user_id))


def get_user_by_email(conn: Connection, email: str) -> dict | None:
    return _one(conn, select(users).where(users.c.email == email.lower()))


def create_user(
    conn: Connection, *, id: str, email: str, name: str | None, password_hash: str | None, now: int
) -> None:
    conn.execute(
        users.insert().values(
            id=id,
            email=email.lower(),
            name=name,
            password_hash=password_hash,
            admin=False,
            created_at=now,
            updated_at=now,
        )
    )


def update_user(conn: Connection, user_id: str, *, now: int, **values: Any) -> None:
    conn.execute(update(users).where(users.c.id == user_id).values(updated_at=now, **values))


def upsert_org_membership(
    conn: Connection, *, id: str, org_id: str, user_id: str, role: str, now: int
) -> None:
    ins = insert_for(conn)(organization_memberships).values(
        id=id, org_id=org_id, user_id=user_id, role=role, created_at=now, updated_at=now
    )
    conn.execute(
        ins.on_conflict_do_update(
            index_elements=["org_id", "user_id"], set_={"role": role, "updated_at": now}
        )
    )


def get_org_role(conn: Connection, org_id: str, user_id: str) -> str | None:
    stmt = select(organization_memberships.c.role).where(
        organization_memberships.c.org_id == org_id, organization_memberships.c.user_id == user_id
    )
    return conn.execute(stmt).scalar()


def get_project_role(conn: Connection, project_id: str, user_id: str) -> str | None:
    stmt = select(project_memberships.c.role).where(
        project_memberships.c.project_id == project_id, project_memberships.c.user_id == user_id
    )
    return conn.execute(stmt).scalar()


def delete_org_membership(conn: Connection, org_id: str, user_id: str) -> None:
    conn.execute(
        delete(organization_memberships).where(
            organization_memberships.c.org_id == org_id, organization_memberships.c.user_id == user_id
        )
    )


def list_org_members(conn: Connection, org_id: str) -> list[dict]:
    stmt = (
        select(users.c.id, users.c.email, users.c.name, organization_memberships.c.role)
        .join(organization_memberships, organization_memberships.c.user_id == users.c.id)
        .where(organization_memberships.c.org_id == org_id)
        .order_by(users.c.email)
    )
    return [dict(r) for r in conn.execute(stmt).mappings()]


def upsert_project_membership(
    conn: Connection, *, project_id: str, user_id: str, role: str, now: int
) -> None:
    ins = insert_for(conn)(project_memberships).values(
        project_id=project_id, user_id=user_id, role=role, created_at=now, updated_at=now
    )
    conn.execute(
        ins.on_conflict_do_update(
            index_elements=["project_id", "user_id"], set_={"role": role, "updated_at": now}
        )
    )


# --- API keys -----------------------------------------------------------------------------------------------


def create_api_key(conn: Connection, **values: Any) -> None:
    conn.execute(api_keys.insert().values(**values))


def get_api_key_by_public_key(conn: Connection, public_key: str) -> dict | None:
    return _one(conn, select(api_keys).where(api_keys.c.public_key == public_key))


def list_api_keys(conn: Connection, project_id: str) -> list[dict]:
    stmt = select(api_keys).where(api_keys.c.project_id == project_id).order_by(api_keys.c.created_at)
    return [dict(r) for r in conn.execute(stmt).mappings()]


def delete_api_key(conn: Connection, key_id: str, project_id: str) -> int:
    result = conn.execute(
        delete(api_keys).where(api_keys.c.id == key_id, api_keys.c.project_id == project_id)
    )
    return result.rowcount or 0


def set_api_key_display(conn: Connection, key_id: str, display_secret_key: str) -> None:
    conn.execute(
        update(api_keys).where(api_keys.c.id == key_id).values(display_secret_key=display_secret_key)
    )


def touch_api_keys(conn: Connection, last_used: dict[str, int]) -> None:
    for key_id, when in last_used.items():
        conn.execute(update(api_keys).where(api_keys.c.id == key_id).values(last_used_at=when))
