"""The organisation-key public API: projects, project API keys, organisation and project memberships.

Every method takes the ``OrgApiAuth`` of an organisation key (``ApiKeyService.authenticate_org``) and touches
only that organisation. Such a key acts with the organisation's full rights (as in Langfuse: it is an OWNER
stand-in), but the invariants of the web UI still hold: an organisation keeps at least one OWNER, a project
role is only given to a member of the organisation. Every change is written to the audit log with
``Actor.api_key``. Refusals are ``RequestError`` (400 bad input, 404 unknown or foreign id).
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Connection, Engine

from lightfuse.services.accounts.audit_log import Actor, record_audit
from lightfuse.services.accounts.web_accounts import MAX_NAME_LENGTH
from lightfuse.services.auth import rbac
from lightfuse.services.auth.api_keys import ApiKeyService, OrgApiAuth
from lightfuse.services.common.clock import now_ms
from lightfuse.services.common.resources import bad, iso, not_found, optional_str
from lightfuse.store.sql import accounts as store
from lightfuse.store.sql import user_admin as admin_store
from lightfuse.store.sql.transactions import write_transaction

# Langfuse: retention is 0 (keep forever) or at least 3 days
MIN_RETENTION_DAYS = 3
MAX_RETENTION_DAYS = 100 * 366
ORG_ROLES = ("OWNER", "ADMIN", "MEMBER", "VIEWER")


def _actor(auth: OrgApiAuth) -> Actor:
    return Actor.api_key(auth.api_key_id, auth.public_key)


def _body(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise bad("The request body must be a JSON object")
    return body


def _name(body: dict[str, Any]) -> str:
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        raise bad("name is required and must be a non-empty string")
    name = name.strip()
    if len(name) > MAX_NAME_LENGTH:
        raise bad(f"name must be at most {MAX_NAME_LENGTH} characters")
    return name


def _metadata(body: dict[str, Any]) -> dict | None:
    value = body.get("metadata")
    if value is not None and not isinstance(value, dict):
        raise bad("metadata must be an object or null")
    return value


def _retention(value: Any) -> int | None:
    """Days to keep data; 0 means forever (stored as None)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad("retention must be an integer number of days")
    if value != 0 and not MIN_RETENTION_DAYS <= value <= MAX_RETENTION_DAYS:
        raise bad(f"retention must be 0 or between {MIN_RETENTION_DAYS} and {MAX_RETENTION_DAYS} days")
    return value or None


def _user_id(body: dict[str, Any]) -> str:
    user_id = body.get("userId")
    if not isinstance(user_id, str) or not user_id.strip():
        raise bad("userId is required and must be a non-empty string")
    return user_id


def _role(body: dict[str, Any]) -> str:
    role = body.get("role")
    if role not in ORG_ROLES:
        raise bad(f"role must be one of {', '.join(ORG_ROLES)}")
    return role


def _key_summary(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "createdAt": iso(row["created_at"]),
        "expiresAt": iso(row.get("expires_at")),
        "lastUsedAt": iso(row.get("last_used_at")),
        "note": row.get("note"),
        "publicKey": row["public_key"],
        "displaySecretKey": row["display_secret_key"],
    }


class OrgApi:
    def __init__(self, engine: Engine, keys: ApiKeyService) -> None:
        self._engine = engine
        self._keys = keys

    # --- projects -------------------------------------------------------------------------------------------

    def _project(self, conn: Connection, auth: OrgApiAuth, project_id: str) -> dict[str, Any]:
        project = store.get_project_with_org(conn, project_id)
        if project is None or project["org_id"] != auth.org_id:
            raise not_found("Project not found")
        return project

    @staticmethod
    def _project_json(project: dict[str, Any]) -> dict[str, Any]:
        item = {
            "id": project["id"],
            "name": project["name"],
            "organization": {"id": project["org_id"], "name": project["org_name"]},
            "metadata": project.get("metadata") or {},
        }
        if project.get("retention_days"):
            item["retentionDays"] = project["retention_days"]
        return item

    def list_projects(self, auth: OrgApiAuth) -> dict[str, Any]:
        with self._engine.connect() as conn:
            rows = store.list_projects(conn, auth.org_id)
        projects = [
            {
                "id": r["id"],
                "name": r["name"],
                "metadata": r.get("metadata") or {},
                "createdAt": iso(r["created_at"]),
                "updatedAt": iso(r["updated_at"]),
            }
            for r in rows
        ]
        return {"projects": projects}

    def create_project(self, auth: OrgApiAuth, body: Any) -> dict[str, Any]:
        body = _body(body)
        name, metadata = _name(body), _metadata(body)
        if "retention" not in body:
            raise bad("retention is required (0 keeps data forever)")
        retention = _retention(body["retention"])
        project_id = str(uuid.uuid4())
        with write_transaction(self._engine) as conn:
            self._refuse_duplicate_name(conn, auth.org_id, name, None)
            now = now_ms()
            store.create_project(
                conn, id=project_id, org_id=auth.org_id, name=name, now=now, retention_days=retention
            )
            if metadata is not None:
                store.update_project(conn, project_id, now=now, metadata=metadata)
            record_audit(
                conn,
                org_id=auth.org_id,
                actor=_actor(auth),
                action="project.create",
                resource_type="project",
                resource_id=project_id,
                project_id=project_id,
                after={"name": name, "retentionDays": retention},
            )
            return self._project_json(self._project(conn, auth, project_id))

    @staticmethod
    def _refuse_duplicate_name(conn: Connection, org_id: str, name: str, project_id: str | None) -> None:
        # Langfuse refuses a second live project of the same name in one organisation
        if any(p["name"] == name and p["id"] != project_id for p in store.list_projects(conn, org_id)):
            raise bad(f"A project named '{name}' already exists in this organization")

    def update_project(self, auth: OrgApiAuth, project_id: str, body: Any) -> dict[str, Any]:
        body = _body(body)
        name = _name(body)
        values: dict[str, Any] = {"name": name}
        if "metadata" in body:
            values["metadata"] = _metadata(body)
        if body.get("retention") is not None:
            values["retention_days"] = _retention(body["retention"])
        with write_transaction(self._engine) as conn:
            before = self._project(conn, auth, project_id)
            self._refuse_duplicate_name(conn, auth.org_id, name, project_id)
            store.update_project(conn, project_id, now=now_ms(), **values)
            record_audit(
                conn,
                org_id=auth.org_id,
                actor=_actor(auth),
                action="project.update",
                resource_type="project",
                resource_id=project_id,
                project_id=project_id,
                before={"name": before["name"], "retentionDays": before.get("retention_days")},
                after={
                    "name": name,
                    "retentionDays": values.get("retention_days", before.get("retention_days")),
                },
            )
            return self._project_json(self._project(conn, auth, project_id))

    def delete_project(self, auth: OrgApiAuth, project_id: str) -> dict[str, Any]:
        """Soft delete, as the web UI's: the project and its keys stop at once, the purge removes the data."""
        now = now_ms()
        with write_transaction(self._engine) as conn:
            project = self._project(conn, auth, project_id)
            keys = store.list_api_keys(conn, project_id)
            store.update_project(conn, project_id, now=now, deleted_at=now)
            record_audit(
                conn,
                org_id=auth.org_id,
                actor=_actor(auth),
                action="project.delete",
                resource_type="project",
                resource_id=project_id,
                project_id=project_id,
                before={"name": project["name"]},
            )
        for key in keys:
            self._keys.delete_key(project_id, key["id"])
        return {
            "success": True,
            "message": "Project deletion has been initiated and is processed in the background",
        }

    # --- project API keys -----------------------------------------------------------------------------------

    def list_project_keys(self, auth: OrgApiAuth, project_id: str) -> dict[str, Any]:
        self._keys.flush_last_used()
        with self._engine.connect() as conn:
            self._project(conn, auth, project_id)
            rows = store.list_api_keys(conn, project_id)
        return {"apiKeys": [_key_summary(r) for r in rows]}

    def create_project_key(self, auth: OrgApiAuth, project_id: str, body: Any) -> dict[str, Any]:
        body = _body(body) if body is not None else {}
        note = optional_str(body, "note", max_len=MAX_NAME_LENGTH)
        public_key = optional_str(body, "publicKey", max_len=200)
        secret_key = optional_str(body, "secretKey", max_len=200)
        if (public_key is None) != (secret_key is None):
            raise bad("publicKey and secretKey must be given together")
        if public_key is not None and not public_key.startswith("pk-lf-"):
            raise bad("publicKey must start with 'pk-lf-'")
        if secret_key is not None and not secret_key.startswith("sk-lf-"):
            raise bad("secretKey must start with 'sk-lf-'")
        with write_transaction(self._engine) as conn:
            self._project(conn, auth, project_id)
            if public_key is not None and store.get_api_key_by_public_key(conn, public_key) is not None:
                raise bad("An API key with this publicKey already exists")
            key = self._keys.create_key(
                project_id, note=note, public_key=public_key, secret_key=secret_key, conn=conn
            )
            record_audit(
                conn,
                org_id=auth.org_id,
                actor=_actor(auth),
                action="apiKey.create",
                resource_type="apiKey",
                resource_id=key.id,
                project_id=project_id,
                after={"publicKey": key.public_key, "note": note},
            )
        return {
            "id": key.id,
            "createdAt": iso(key.created_at),
            "publicKey": key.public_key,
            "secretKey": key.secret_key,
            "displaySecretKey": key.display_secret_key,
            "note": note,
        }

    def delete_project_key(self, auth: OrgApiAuth, project_id: str, key_id: str) -> dict[str, Any]:
        with self._engine.connect() as conn:
            self._project(conn, auth, project_id)
        if not self._keys.delete_key(project_id, key_id):
            raise not_found("API key not found")
        with write_transaction(self._engine) as conn:
            record_audit(
                conn,
                org_id=auth.org_id,
                actor=_actor(auth),
                action="apiKey.delete",
                resource_type="apiKey",
                resource_id=key_id,
                project_id=project_id,
            )
        return {"success": True}

    def list_org_keys(self, auth: OrgApiAuth) -> dict[str, Any]:
        self._keys.flush_last_used()
        with self._engine.connect() as conn:
            rows = admin_store.list_org_api_keys(conn, auth.org_id)
        return {"apiKeys": [_key_summary(r) for r in rows]}

    # --- organisation memberships ---------------------------------------------------------------------------

    @staticmethod
    def _membership(user: dict[str, Any], role: str) -> dict[str, Any]:
        return {"userId": user["id"], "role": role, "email": user["email"], "name": user.get("name") or ""}

    def list_org_memberships(self, auth: OrgApiAuth) -> dict[str, Any]:
        with self._engine.connect() as conn:
            members = store.list_org_members(conn, auth.org_id)
        return {"memberships": [self._membership(m, m["role"]) for m in members]}

    @staticmethod
    def _owners(conn: Connection, org_id: str) -> int:
        return sum(1 for m in store.list_org_members(conn, org_id) if m["role"] == "OWNER")

    def upsert_org_membership(self, auth: OrgApiAuth, body: Any) -> dict[str, Any]:
        body = _body(body)
        user_id, role = _user_id(body), _role(body)
        with write_transaction(self._engine) as conn:
            user = store.get_user(conn, user_id)
            if user is None:
                raise not_found("User not found")
            current = store.get_org_role(conn, auth.org_id, user_id)
            if current == "OWNER" and role != "OWNER" and self._owners(conn, auth.org_id) <= 1:
                raise bad("An organization needs at least one owner")
            store.upsert_org_membership(
                conn, id=str(uuid.uuid4()), org_id=auth.org_id, user_id=user_id, role=role, now=now_ms()
            )
            if role != current:
                record_audit(
                    conn,
                    org_id=auth.org_id,
                    actor=_actor(auth),
                    action="membership.update" if current else "membership.create",
                    resource_type="membership",
                    resource_id=user_id,
                    before={"role": current} if current else None,
                    after={"email": user["email"], "role": role},
                )
        return self._membership(user, role)

    def delete_org_membership(self, auth: OrgApiAuth, body: Any) -> dict[str, Any]:
        user_id = _user_id(_body(body))
        with write_transaction(self._engine) as conn:
            current = store.get_org_role(conn, auth.org_id, user_id)
            if current is None:
                raise not_found("Membership not found")
            if current == "OWNER" and self._owners(conn, auth.org_id) <= 1:
                raise bad("An organization needs at least one owner")
            store.delete_org_membership(conn, auth.org_id, user_id)
            admin_store.delete_project_memberships_in_org(conn, auth.org_id, user_id)
            record_audit(
                conn,
                org_id=auth.org_id,
                actor=_actor(auth),
                action="membership.delete",
                resource_type="membership",
                resource_id=user_id,
                before={"role": current},
            )
        return {"message": "Membership deleted successfully", "userId": user_id}

    # --- project memberships --------------------------------------------------------------------------------

    def list_project_memberships(self, auth: OrgApiAuth, project_id: str) -> dict[str, Any]:
        """Everyone with access to the project: their project role where they have one, else the org role."""
        with self._engine.connect() as conn:
            self._project(conn, auth, project_id)
            members = store.list_org_members(conn, auth.org_id)
            overrides = {
                r["user_id"]: r["role"]
                for r in admin_store.list_project_roles(conn, auth.org_id)
                if r["project_id"] == project_id
            }
        result = []
        for m in members:
            role = rbac.effective_project_role(m["role"], overrides.get(m["id"]))
            if role is not None and role != "NONE":
                result.append(self._membership(m, role))
        return {"memberships": result}

    def upsert_project_membership(self, auth: OrgApiAuth, project_id: str, body: Any) -> dict[str, Any]:
        body = _body(body)
        user_id, role = _user_id(body), _role(body)
        with write_transaction(self._engine) as conn:
            self._project(conn, auth, project_id)
            user = store.get_user(conn, user_id)
            if user is None or store.get_org_role(conn, auth.org_id, user_id) is None:
                raise not_found("User is not a member of this organization")
            current = store.get_project_role(conn, project_id, user_id)
            store.upsert_project_membership(
                conn, project_id=project_id, user_id=user_id, role=role, now=now_ms()
            )
            if role != current:
                record_audit(
                    conn,
                    org_id=auth.org_id,
                    actor=_actor(auth),
                    action="projectMembership.update",
                    resource_type="projectMembership",
                    resource_id=user_id,
                    project_id=project_id,
                    before={"role": current},
                    after={"role": role},
                )
        return self._membership(user, role)

    def delete_project_membership(self, auth: OrgApiAuth, project_id: str, body: Any) -> dict[str, Any]:
        user_id = _user_id(_body(body))
        with write_transaction(self._engine) as conn:
            self._project(conn, auth, project_id)
            if store.get_org_role(conn, auth.org_id, user_id) is None:
                raise not_found("User is not a member of this organization")
            current = store.get_project_role(conn, project_id, user_id)
            if current is None or not admin_store.delete_project_membership(conn, project_id, user_id):
                raise not_found("Project membership not found")
            record_audit(
                conn,
                org_id=auth.org_id,
                actor=_actor(auth),
                action="projectMembership.delete",
                resource_type="projectMembership",
                resource_id=user_id,
                project_id=project_id,
                before={"role": current},
            )
        return {"message": "Project membership deleted successfully", "userId": user_id}
