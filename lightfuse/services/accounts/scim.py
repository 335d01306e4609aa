"""SCIM 2.0 user provisioning into one organisation (``/api/public/scim/*``, organisation API key).

What the identity provider sees (RFC 7643/7644, the subset Langfuse's API documents): the service provider
configuration, resource types and schemas; Users list (``filter=userName eq "..."`` only, ``startIndex`` 1-based,
``count`` default and maximum 100), get, create and delete. A created user joins the organisation with the role
NONE (no project access until someone gives a role, as Langfuse does for provisioned users) and gets no
password: they use SSO or the password-reset link. An address that already has an account is added to the
organisation instead of failing. Delete removes the membership (and the user's project roles in the
organisation), not the account. Errors are ``ScimError`` (status, detail, scimType).
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from sqlalchemy import Engine

from lightfuse.services.accounts.audit_log import Actor, record_audit
from lightfuse.services.auth.api_keys import OrgApiAuth
from lightfuse.services.common.clock import now_ms
from lightfuse.services.common.rows import iso_ms
from lightfuse.store.sql import accounts as store
from lightfuse.store.sql import user_admin as admin_store
from lightfuse.store.sql.transactions import write_transaction

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
LIST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"
SPC_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
RT_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"
SCHEMA_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Schema"
MAX_COUNT = 100
PROVISIONED_ROLE = "NONE"
# userName eq "value" (attribute names are case-insensitive in SCIM; the value is a JSON string)
_FILTER = re.compile(r'^\s*userName\s+eq\s+"((?:[^"\\]|\\.)*)"\s*$', re.IGNORECASE)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")


class ScimError(Exception):
    def __init__(self, status: int, detail: str, scim_type: str | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.scim_type = scim_type


def _user_resource(row: dict[str, Any], base_url: str) -> dict[str, Any]:
    return {
        "schemas": [USER_SCHEMA],
        "id": row["id"],
        "userName": row["email"],
        "name": {"formatted": row.get("name")},
        "emails": [{"primary": True, "value": row["email"], "type": "work"}],
        "active": True,
        "meta": {
            "resourceType": "User",
            "created": iso_ms(row["created_at"]) if row.get("created_at") else None,
            "lastModified": iso_ms(row["updated_at"]) if row.get("updated_at") else None,
            "location": f"{base_url}/api/public/scim/Users/{row['id']}",
        },
    }


def service_provider_config(base_url: str) -> dict[str, Any]:
    return {
        "schemas": [SPC_SCHEMA],
        "documentationUri": "https://langfuse.com/docs/administration/scim-and-org-api",
        "patch": {"supported": False},
        "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": True, "maxResults": MAX_COUNT},
        "changePassword": {"supported": False},
        "sort": {"supported": False},
        "etag": {"supported": False},
        "authenticationSchemes": [
            {
                "name": "HTTP Basic",
                "description": "Organisation API key: public key as user, secret key as password",
                "specUri": "https://www.rfc-editor.org/rfc/rfc2617",
                "type": "httpbasic",
                "primary": True,
            }
        ],
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": f"{base_url}/api/public/scim/ServiceProviderConfig",
        },
    }


def resource_types(base_url: str) -> dict[str, Any]:
    user = {
        "schemas": [RT_SCHEMA],
        "id": "User",
        "name": "User",
        "endpoint": "/Users",
        "description": "User Account",
        "schema": USER_SCHEMA,
        "schemaExtensions": [],
        "meta": {
            "resourceType": "ResourceType",
            "location": f"{base_url}/api/public/scim/ResourceTypes/User",
        },
    }
    return {"schemas": [LIST_SCHEMA], "totalResults": 1, "Resources": [user]}


def _attr(
    name: str,
    type_: str = "string",
    required: bool = False,
    multi: bool = False,
    unique: str = "none",
    sub: list | None = None,
) -> dict[str, Any]:
    out = {
        "name": name,
        "type": type_,
        "multiValued": multi,
        "required": required,
        "caseExact": False,
        "mutability": "readWrite",
        "returned": "default",
        "uniqueness": unique,
    }
    if sub is not None:
        out["subAttributes"] = sub
    return out


def schemas(base_url: str) -> dict[str, Any]:
    user = {
        "id": USER_SCHEMA,
        "name": "User",
        "description": "User Account",
        "attributes": [
            _attr("userName", required=True, unique="server"),
            _attr("name", "complex", sub=[_attr("formatted")]),
            _attr(
                "emails",
                "complex",
                multi=True,
                sub=[_attr("value"), _attr("type"), _attr("primary", "boolean")],
            ),
            _attr("active", "boolean"),
        ],
        "meta": {"resourceType": "Schema", "location": f"{base_url}/api/public/scim/Schemas/{USER_SCHEMA}"},
    }
    return {"schemas": [LIST_SCHEMA], "totalResults": 1, "Resources": [user]}


def _int(value: str | None, default: int, name: str) -> int:
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ScimError(400, f"{name} must be an integer", "invalidValue") from None


class ScimService:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def list_users(
        self, auth: OrgApiAuth, base_url: str, filter_: str | None, start_index: str | None, count: str | None
    ) -> dict[str, Any]:
        # clamped: an offset past 2^31 finds nothing anyway, and Postgres refuses one past 2^63 (no 500)
        start = min(max(_int(start_index, 1, "startIndex"), 1), 2**31)
        size = min(max(_int(count, MAX_COUNT, "count"), 0), MAX_COUNT)
        email = None
        if filter_ is not None and filter_.strip():
            match = _FILTER.match(filter_)
            if match is None:
                raise ScimError(
                    400, 'Only filters of the form userName eq "value" are supported', "invalidFilter"
                )
            email = match.group(1).replace('\\"', '"').replace("\\\\", "\\")
        with self._engine.connect() as conn:
            rows, total = admin_store.list_org_users(
                conn, auth.org_id, email=email, limit=size, offset=start - 1
            )
        return {
            "schemas": [LIST_SCHEMA],
            "totalResults": total,
            "startIndex": start,
            "itemsPerPage": len(rows),
            "Resources": [_user_resource(r, base_url) for r in rows],
        }

    def get_user(self, auth: OrgApiAuth, base_url: str, user_id: str) -> dict[str, Any]:
        with self._engine.connect() as conn:
            row = admin_store.get_org_user(conn, auth.org_id, user_id)
        if row is None:
            raise ScimError(404, "User not found")
        return _user_resource(row, base_url)

    def create_user(self, auth: OrgApiAuth, base_url: str, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise ScimError(400, "The body must be a JSON object", "invalidSyntax")
        user_name = body.get("userName")
        if not isinstance(user_name, str) or not _EMAIL.match(user_name.strip()) or len(user_name) > 320:
            raise ScimError(400, "userName must be an email address", "invalidValue")
        email = user_name.strip().lower()
        name_obj = body.get("name")
        if name_obj is not None and not isinstance(name_obj, dict):
            raise ScimError(400, "name must be an object", "invalidValue")
        name_obj = name_obj or {}
        formatted = name_obj.get("formatted")
        if formatted is None and (name_obj.get("givenName") or name_obj.get("familyName")):
            formatted = " ".join(str(p) for p in (name_obj.get("givenName"), name_obj.get("familyName")) if p)
        if formatted is not None and not isinstance(formatted, str):
            raise ScimError(400, "name.formatted must be a string", "invalidValue")
        formatted = (formatted or "").strip()[:255] or None
        now = now_ms()
        actor = Actor.api_key(auth.api_key_id, auth.public_key)
        with write_transaction(self._engine) as conn:
            user = store.get_user_by_email(conn, email)
            if user is None:
                user_id = str(uuid.uuid4())
                # no password: the password field of the request is ignored (Langfuse's documented behaviour)
                store.create_user(conn, id=user_id, email=email, name=formatted, password_hash=None, now=now)
            else:
                user_id = user["id"]
                if store.get_org_role(conn, auth.org_id, user_id) is not None:
                    raise ScimError(409, "User already exists in this organization", "uniqueness")
            store.upsert_org_membership(
                conn,
                id=str(uuid.uuid4()),
                org_id=auth.org_id,
                user_id=user_id,
                role=PROVISIONED_ROLE,
                now=now,
            )
            record_audit(
                conn,
                org_id=auth.org_id,
                actor=actor,
                action="membership.create",
                resource_type="membership",
                resource_id=user_id,
                after={"email": email, "role": PROVISIONED_ROLE},
                note="SCIM",
            )
            row = admin_store.get_org_user(conn, auth.org_id, user_id)
        assert row is not None  # the membership was written (or found) in this transaction
        return _user_resource(row, base_url)

    def delete_user(self, auth: OrgApiAuth, user_id: str) -> None:
        actor = Actor.api_key(auth.api_key_id, auth.public_key)
        with write_transaction(self._engine) as conn:
            role = store.get_org_role(conn, auth.org_id, user_id)
            if role is None:
                raise ScimError(404, "User not found")
            if (
                role == "OWNER"
                and sum(1 for m in store.list_org_members(conn, auth.org_id) if m["role"] == "OWNER") <= 1
            ):
                raise ScimError(400, "The last owner of an organization cannot be removed", "mutability")
            store.delete_org_membership(conn, auth.org_id, user_id)
            admin_store.delete_project_memberships_in_org(conn, auth.org_id, user_id)
            record_audit(
                conn,
                org_id=auth.org_id,
                actor=actor,
                action="membership.delete",
                resource_type="membership",
                resource_id=user_id,
                before={"role": role},
                note="SCIM",
            )
