"""Organisation administration beyond plain membership: per-project roles, organisation API keys.

Project roles (``project_memberships``) override the organisation role in one project (rbac
``effective_project_role``); Langfuse keeps them for its enterprise edition, here they are free. Setting one
needs ``projectMembers:CUD`` in that project for the acting user, and nobody grants more than they hold.
Organisation keys are managed by OWNER and ADMIN (the issue asks for both; the RBAC matrix names the scope
``organization:CRUD_apiKeys``). Every change is written to the audit log.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine

from lightfuse.services.accounts.audit_log import Actor, record_audit
from lightfuse.services.accounts.web_accounts import (
    MAX_NAME_LENGTH,
    AccountError,
    Forbidden,
    OrgAccess,
    listed_key,
)
from lightfuse.services.auth import rbac
from lightfuse.services.auth.api_keys import ApiKeyService, IssuedKey
from lightfuse.services.common.clock import now_ms
from lightfuse.store.sql import accounts as store
from lightfuse.store.sql import user_admin as admin_store
from lightfuse.store.sql.transactions import write_transaction


class OrgAdmin:
    def __init__(self, engine: Engine, keys: ApiKeyService) -> None:
        self._engine = engine
        self._keys = keys

    # --- members with their project roles -------------------------------------------------------------------

    def members_with_project_roles(
        self, access: OrgAccess
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """(members, projects): each member carries ``project_roles`` {project_id: role} (overrides only)."""
        access.require("organizationMembers:read")
        with self._engine.connect() as conn:
            members = store.list_org_members(conn, access.id)
            projects = store.list_projects(conn, access.id)
            overrides = admin_store.list_project_roles(conn, access.id)
        by_user: dict[str, dict[str, str]] = {}
        for row in overrides:
            by_user.setdefault(row["user_id"], {})[row["project_id"]] = row["role"]
        return [{**m, "project_roles": by_user.get(m["id"], {})} for m in members], projects

    def set_project_role(self, access: OrgAccess, project_id: str, user_id: str, role: str | None) -> None:
        """Give a member a role of its own in one project; ``role`` empty/None removes the override (the
        organisation role applies again)."""
        access.require("organizationMembers:CUD")
        role = (role or "").strip().upper() or None
        if role is not None and role not in rbac.ROLES:
            raise AccountError(
                f"Role must be one of {', '.join(rbac.ROLES)}, or empty for the organisation role."
            )
        with write_transaction(self._engine) as conn:
            project = store.get_project(conn, project_id)
            if project is None or project["org_id"] != access.id:
                raise AccountError("No such project in this organisation.")
            org_role = store.get_org_role(conn, access.id, user_id)
            if org_role is None:
                raise AccountError("This user is not a member.")
            current = store.get_project_role(conn, project_id, user_id)
            effective_now = rbac.effective_project_role(org_role, current)
            # the acting user's own rank in that project bounds what they may hand out or take away
            actor_role = rbac.effective_project_role(
                access.role,
                store.get_project_role(conn, project_id, access.user.id),
                instance_admin=access.user.admin,
            )
            if not rbac.has_project_scope(actor_role, "projectMembers:CUD") or not rbac.can_assign(
                actor_role, effective_now, role
            ):
                raise Forbidden("projectMembers:CUD")
            if role is None:
                admin_store.delete_project_membership(conn, project_id, user_id)
            else:
                store.upsert_project_membership(
                    conn, project_id=project_id, user_id=user_id, role=role, now=now_ms()
                )
            if role != current:
                record_audit(
                    conn,
                    org_id=access.id,
                    actor=Actor.user(access.user),
                    action="projectMembership.update" if role else "projectMembership.delete",
                    resource_type="projectMembership",
                    resource_id=user_id,
                    project_id=project_id,
                    before={"role": current},
                    after={"role": role} if role else None,
                )

    # --- organisation API keys ------------------------------------------------------------------------------

    @staticmethod
    def _require_keys(access: OrgAccess) -> None:
        if access.role not in ("OWNER", "ADMIN"):
            raise Forbidden("organization:CRUD_apiKeys")

    def list_org_keys(self, access: OrgAccess) -> list[dict[str, Any]]:
        self._require_keys(access)
        self._keys.flush_last_used()
        with self._engine.connect() as conn:
            rows = admin_store.list_org_api_keys(conn, access.id)
        return [listed_key(r) for r in rows]

    def create_org_key(self, access: OrgAccess, note: str | None) -> IssuedKey:
        self._require_keys(access)
        note = (note or "").strip()[:MAX_NAME_LENGTH] or None
        with write_transaction(self._engine) as conn:
            key = self._keys.create_org_key(access.id, note=note, conn=conn)
            record_audit(
                conn,
                org_id=access.id,
                actor=Actor.user(access.user),
                action="orgApiKey.create",
                resource_type="apiKey",
                resource_id=key.id,
                after={"publicKey": key.public_key, "note": note},
            )
        return key

    def delete_org_key(self, access: OrgAccess, key_id: str) -> bool:
        self._require_keys(access)
        with write_transaction(self._engine) as conn:
            deleted = admin_store.delete_org_api_key(conn, access.id, key_id) > 0
            if deleted:
                record_audit(
                    conn,
                    org_id=access.id,
                    actor=Actor.user(access.user),
                    action="orgApiKey.delete",
                    resource_type="apiKey",
                    resource_id=key_id,
                )
        self._keys.forget_key_id(key_id)
        return deleted
