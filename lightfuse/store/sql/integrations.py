"""SQL of the project integrations (``tables_integrations``): blob-storage export settings and feedback."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, delete, select, update

from lightfuse.store.sql.tables import projects
from lightfuse.store.sql.tables_integrations import blob_storage_integrations as blob
from lightfuse.store.sql.tables_integrations import feedback


def project_in_org(conn: Connection, org_id: str, project_id: str) -> bool:
    stmt = select(projects.c.id).where(
        projects.c.id == project_id, projects.c.org_id == org_id, projects.c.deleted_at.is_(None)
    )
    return conn.execute(stmt).first() is not None


def _of_org(org_id: str):
    return (
        select(blob)
        .join(projects, projects.c.id == blob.c.project_id)
        .where(projects.c.org_id == org_id, projects.c.deleted_at.is_(None))
    )


def list_blob_integrations(conn: Connection, org_id: str) -> list[dict[str, Any]]:
    stmt = _of_org(org_id).order_by(blob.c.created_at, blob.c.id)
    return [dict(r) for r in conn.execute(stmt).mappings()]


def get_blob_integration(conn: Connection, org_id: str, integration_id: str) -> dict[str, Any] | None:
    row = conn.execute(_of_org(org_id).where(blob.c.id == integration_id)).mappings().first()
    return dict(row) if row else None


def get_blob_integration_of_project(conn: Connection, project_id: str) -> dict[str, Any] | None:
    row = conn.execute(select(blob).where(blob.c.project_id == project_id)).mappings().first()
    return dict(row) if row else None


def insert_blob_integration(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(blob.insert().values(**values))


def update_blob_integration(conn: Connection, project_id: str, values: dict[str, Any]) -> None:
    conn.execute(update(blob).where(blob.c.project_id == project_id).values(**values))


def delete_blob_integration(conn: Connection, project_id: str) -> None:
    conn.execute(delete(blob).where(blob.c.project_id == project_id))


def insert_feedback(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(feedback.insert().values(**values))


def list_feedback(conn: Connection, project_id: str) -> list[dict[str, Any]]:
    stmt = select(feedback).where(feedback.c.project_id == project_id).order_by(feedback.c.created_at)
    return [dict(r) for r in conn.execute(stmt).mappings()]
