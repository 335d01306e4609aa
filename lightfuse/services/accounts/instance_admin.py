"""The instance admin API (``/api/admin/organizations``, Langfuse's openapi-organizations.yml).

Authorised by ``ADMIN_API_KEY`` alone (checked in the HTTP layer): organisations CRUD and their organisation
API keys, for whoever runs the instance. An organisation with projects (live, or deleted and awaiting the
purge) cannot be deleted: its projects go first. Changes are audit entries of the organisation, with the
actor ``ADMIN_API_KEY``. Refusals are ``RequestError`` (400 bad input, 404 unknown id).
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Connection, Engine

from lightfuse.services.accounts.audit_log import Actor, record_audit
from lightfuse.services.accounts.web_accounts import MAX_NAME_LENGTH
from lightfuse.services.auth.api_keys import ApiKeyService
from lightfuse.services.common.clock import now_ms
from lightfuse.services.common.resources import bad, iso, not_found, optional_str
from lightfuse.store.sql import accounts as store
from lightfuse.store.sql import user_admin as admin_store
from lightfuse.store.sql.transactions import write_transaction

ADMIN = Actor("SYSTEM", None, "ADMIN_API_KEY")


def _fields(body: Any) -> tuple[str, dict | None, bool]:
    """(name, metadata, whether metadata was given) of a create/update body."""
    if not isinstance(body, dict):
        raise bad("The request body must be a JSON object")
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        raise bad("name is required and must be a non-empty string")
    if len(name.strip()) > MAX_NAME_LENGTH:
        raise bad(f"name must be at most {MAX_NAME_LENGTH} characters")
    metadata = body.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise bad("metadata must be an object or null")
    return name.strip(), metadata, "metadata" in body


class InstanceAdmin:
    def __init__(self, engine: Engine, keys: ApiKeyService) -> None:
        self._engine = engine
        self._keys = keys

    def _org(self, conn: Connection, org_id: str) -> dict[str, Any]:
        org = store.get_organization(conn, org_id)
        if org is None:
            raise not_found("Organization not found")
        projects = [
            {
                "id": p["id"],
                "name": p["name"],
                "metadata": p.get("metadata"),
                "createdAt": iso(p["created_at"]),
                "updatedAt": iso(p["updated_at"]),
            }
            for p in store.list_projects(conn, org_id)
        ]
        return {
            "id": org["id"],
            "name": org["name"],
            "createdAt": iso(org["created_at"]),
            "metadata": org.get("metadata") or {},
            "projects": projects,
        }

    def list_orgs(self) -> dict[str, Any]:
        with self._engine.connect() as conn:
            return {"organizations": [self._org(conn, o["id"]) for o in store.list_organizations(conn)]}

    def get_org(self, org_id: str) -> dict[str, Any]:
        with self._engine.connect() as conn:
            return self._org(conn, org_id)

    def create_org(self, body: Any) -> dict[str, Any]:
        name, metadata, _given = _fields(body)
        org_id = str(uuid.uuid4())
        with write_transaction(self._engine) as conn:
            store.create_organization(conn, id=org_id, name=name, now=now_ms(), metadata=metadata)
            record_audit(
                conn,
                org_id=org_id,
                actor=ADMIN,
                action="organization.create",
                resource_type="organization",
                resource_id=org_id,
                after={"name": name},
            )
            return self._org(conn, org_id)

    def update_org(self, org_id: str, body: Any) -> dict[str, Any]:
        name, metadata, given = _fields(body)
        with write_transaction(self._engine) as conn:
            before = self._org(conn, org_id)
            values: dict[str, Any] = {"name": name}
            if given:
                values["metadata"] = metadata
            store.update_organization(conn, org_id, now=now_ms(), **values)
            record_audit(
                conn,
                org_id=org_id,
                actor=ADMIN,
                action="organization.update",
                resource_type="organization",
                resource_id=org_id,
                before={"name": before["name"]},
                after={"name": name},
            )
            return self._org(conn, org_id)

    def delete_org(self, org_id: str) -> dict[str, Any]:
        with write_transaction(self._engine) as conn:
            org = self._org(conn, org_id)
            if org["projects"] or store.count_deleted_projects(conn, org_id):
                raise bad(
                    "Delete the organization's projects first (deleted projects must finish their purge)"
                )
            keys = admin_store.list_org_api_keys(conn, org_id)
            store.delete_organization(conn, org_id)
        for key in keys:
            self._keys.forget_key_id(key["id"])
        return {"success": True}

    # --- organisation API keys ------------------------------------------------------------------------------

    def list_keys(self, org_id: str) -> dict[str, Any]:
        self._keys.flush_last_used()
        with self._engine.connect() as conn:
            self._org(conn, org_id)
            rows = admin_store.list_org_api_keys(conn, org_id)
        return {
            "apiKeys": [
                {
                    "id": r["id"],
                    "createdAt": iso(r["created_at"]),
                    "expiresAt": iso(r.get("expires_at")),
                    "lastUsedAt": iso(r.get("last_used_at")),
                    "note": r.get("note"),
                    "publicKey": r["public_key"],
                    "displaySecretKey": r["display_secret_key"],
                }
                for r in rows
            ]
        }

    def create_key(self, org_id: str, body: Any) -> dict[str, Any]:
        if body is not None and not isinstance(body, dict):
            raise bad("The request body must be a JSON object")
        note = optional_str(body or {}, "note", max_len=MAX_NAME_LENGTH)
        with write_transaction(self._engine) as conn:
            self._org(conn, org_id)
            key = self._keys.create_org_key(org_id, note=note, conn=conn)
            record_audit(
                conn,
                org_id=org_id,
                actor=ADMIN,
                action="orgApiKey.create",
                resource_type="apiKey",
                resource_id=key.id,
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

    def delete_key(self, org_id: str, key_id: str) -> dict[str, Any]:
        with write_transaction(self._engine) as conn:
            self._org(conn, org_id)
            if not admin_store.delete_org_api_key(conn, org_id, key_id):
                raise not_found("API key not found")
            record_audit(
                conn,
                org_id=org_id,
                actor=ADMIN,
                action="orgApiKey.delete",
                resource_type="apiKey",
                resource_id=key_id,
            )
        self._keys.forget_key_id(key_id)
        return {"success": True}
