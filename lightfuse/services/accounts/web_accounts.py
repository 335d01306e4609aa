"""Accounts as the web UI sees them: sign-up/sign-in, organisations, projects, members and API keys.

Every mutating method takes an access object (``OrgAccess`` / ``ProjectAccess``) that was resolved for the
signed-in user, and checks the scope it needs itself - the pages check too (to hide buttons), but the rule
lives here so no route can forget it. Errors:

* ``NoAccess``: the user has no role in the organisation/project; the UI answers 404 so that the existence
  of other people's projects is not revealed.
* ``Forbidden``: the user can see the object but lacks the scope for this action (403).
* ``AccountError``: the request itself is wrong (duplicate email, last owner, ...); shown next to the form.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

from lightfuse.services.accounts.accounts import hash_password
from lightfuse.services.accounts.audit_log import Actor, record_audit
from lightfuse.services.accounts.sso_config import NewUserDefaults
from lightfuse.services.auth import rbac
from lightfuse.services.auth.api_keys import ApiKeyService, IssuedKey
from lightfuse.services.common.clock import now_ms
from lightfuse.store.sql import accounts as store
from lightfuse.store.sql import user_admin as admin_store

MIN_PASSWORD_LENGTH = 8
MAX_NAME_LENGTH = 255
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")


class NoAccess(LookupError):
    pass


class Forbidden(PermissionError):
    def __init__(self, scope: str) -> None:
        super().__init__(f"Your role does not allow this action ({scope}).")
        self.scope = scope


class AccountError(ValueError):
    pass


def listed_key(row: dict[str, Any]) -> dict[str, Any]:
    """An API key as the settings pages list it (project and organisation keys alike); never the secret."""
    return {
        "id": row["id"],
        "publicKey": row["public_key"],
        "displaySecretKey": row["display_secret_key"],
        "note": row.get("note"),
        "createdAt": row["created_at"],
        "lastUsedAt": row.get("last_used_at"),
    }


@dataclass(frozen=True)
class User:
    id: str
    email: str
    name: str | None
    admin: bool


@dataclass(frozen=True)
class OrgAccess:
    user: User
    org: dict[str, Any]
    role: str | None
    scopes: frozenset[str] = field(default_factory=frozenset)

    @property
    def id(self) -> str:
        return self.org["id"]

    def can(self, scope: str) -> bool:
        return scope in self.scopes

    def require(self, scope: str) -> None:
        if not rbac.has_org_scope(self.role, scope):
            raise Forbidden(scope)


@dataclass(frozen=True)
class ProjectAccess:
    user: User
    project: dict[str, Any]
    role: str
    scopes: frozenset[str] = field(default_factory=frozenset)

    @property
    def id(self) -> str:
        return self.project["id"]

    @property
    def org_id(self) -> str:
        return self.project["org_id"]

    def can(self, scope: str) -> bool:
        return scope in self.scopes

    def require(self, scope: str) -> None:
        if not rbac.has_project_scope(self.role, scope):
            raise Forbidden(scope)


def _user(row: dict[str, Any]) -> User:
    return User(
        id=row["id"],
        email=row["email"],
        name=row.get("name"),
        admin=bool(row.get("admin")),
    )


def _clean_name(name: str | None, what: str) -> str:
    name = (name or "").strip()
    if not name:
        raise AccountError(f"{what} name must not be empty.")
    if len(name) > MAX_NAME_LENGTH:
        raise AccountError(f"{what} name must be at most {MAX_NAME_LENGTH} characters.")
    return name


def _clean_role(role: str | None) -> str:
    role = (role or "").strip().upper()
    if role not in rbac.ROLES:
        raise AccountError(f"Role must be one of {', '.join(rbac.ROLES)}.")
    return role


class WebAccounts:
    def __init__(self, engine: Engine, keys: ApiKeyService) -> None:
        self._engine = engine
        self._keys = keys
        # LANGFUSE_DEFAULT_ORG_*/PROJECT_*: set by the web install; applied to every user created here
        self.new_user_defaults: NewUserDefaults | None = None

    # --- users ----------------------------------------------------------------------------------------------

    def get_user(self, user_id: str) -> User | None:
        with self._engine.connect() as conn:
            row = store.get_user(conn, user_id)
        assert row is not None  # inserted in this transaction
        return _user(row) if row else None

    def password_hash_for_sign_in(self, email: str) -> tuple[User | None, str | None]:
        """The user with this email (None if there is none) and their password hash (None if they have none)."""
        with self._engine.connect() as conn:
            row = store.get_user_by_email(conn, (email or "").strip())
        return (_user(row), row.get("password_hash")) if row else (None, None)

    def password_hash_of(self, user_id: str) -> str | None:
        with self._engine.connect() as conn:
            row = store.get_user(conn, user_id)
        return row.get("password_hash") if row else None

    def set_password_hash(self, user_id: str, password_hash: str) -> None:
        with self._engine.begin() as conn:
            store.update_user(conn, user_id, now=now_ms(), password_hash=password_hash)

    @staticmethod
    def check_new_password(password: str | None) -> None:
        if len(password or "") < MIN_PASSWORD_LENGTH:
            raise AccountError(f"The password must have at least {MIN_PASSWORD_LENGTH} characters.")

    def check_sign_up(self, email: str, password: str) -> str:
        """The normalised email, after checking the form (and that the email is free) before any hashing."""
        email = (email or "").strip().lower()
        if not _EMAIL.match(email) or len(email) > 320:
            raise AccountError("Enter a valid email address.")
        self.check_new_password(password)
        with self._engine.connect() as conn:
            if store.get_user_by_email(conn, email) is not None:
                raise AccountError("An account with this email already exists. Sign in instead.")
        return email

    def create_user_with_hash(
        self, email: str, password_hash: str, name: str | None = None, conn=None
    ) -> User:
        """Every account the UI creates goes through here (``conn``: inside the caller's transaction, e.g. an
        invitation's acceptance, so a refused acceptance leaves no account behind)."""
        if conn is None:
            with self._engine.begin() as c:
                return self.create_user_with_hash(email, password_hash, name, c)
        name = (name or "").strip()[:MAX_NAME_LENGTH] or None
        user_id = str(uuid.uuid4())
        if store.get_user_by_email(conn, email) is not None:
            raise AccountError("An account with this email already exists. Sign in instead.")
        store.create_user(conn, id=user_id, email=email, name=name, password_hash=password_hash, now=now_ms())
        if self.new_user_defaults is not None:
            from lightfuse.services.accounts.sso_accounts import (
                apply_new_user_defaults,  # late: it imports this module
            )

            apply_new_user_defaults(conn, user_id, self.new_user_defaults, now_ms())
        row = store.get_user(conn, user_id)
        assert row is not None  # inserted in this transaction
        return _user(row)

    def sign_up(self, email: str, password: str, name: str | None = None) -> User:
        """Sign-up in the caller's thread (scripts and tests; the web form goes through ``WebAuth``)."""
        email = self.check_sign_up(email, password)
        return self.create_user_with_hash(email, hash_password(password), name)

    # --- organisations --------------------------------------------------------------------------------------

    def _org_access(self, conn, user: User, org_id: str) -> OrgAccess:
        org = store.get_organization(conn, org_id)
        if org is None:
            raise NoAccess(org_id)
        role = store.get_org_role(conn, org_id, user.id)
        if user.admin:
            role = "OWNER"
        if role is None:
            raise NoAccess(org_id)
        return OrgAccess(user, org, role, rbac.org_scopes(role))

    def org_access(self, user: User, org_id: str) -> OrgAccess:
        with self._engine.connect() as conn:
            return self._org_access(conn, user, org_id)

    def list_orgs(self, user: User) -> list[dict[str, Any]]:
        """The user's organisations, each with the projects the user may open and the role in each."""
        out = []
        with self._engine.connect() as conn:
            for org in store.list_organizations_for_user(conn, user.id):
                org_role = "OWNER" if user.admin else org["role"]
                projects = []
                for project in store.list_projects(conn, org["id"]):
                    role = rbac.effective_project_role(
                        org_role,
                        store.get_project_role(conn, project["id"], user.id),
                        instance_admin=user.admin,
                    )
                    if role is not None:
                        projects.append({**project, "role": role})
                out.append(
                    {**org, "role": org_role, "projects": projects, "scopes": rbac.org_scopes(org_role)}
                )
        return out

    def create_org(self, user: User, name: str) -> str:
        name = _clean_name(name, "Organisation")
        org_id = str(uuid.uuid4())
        now = now_ms()
        with self._engine.begin() as conn:
            store.create_organization(conn, id=org_id, name=name, now=now)
            store.upsert_org_membership(
                conn, id=str(uuid.uuid4()), org_id=org_id, user_id=user.id, role="OWNER", now=now
            )
        return org_id

    def rename_org(self, access: OrgAccess, name: str) -> None:
        access.require("organization:update")
        name = _clean_name(name, "Organisation")
        with self._engine.begin() as conn:
            store.update_organization(conn, access.id, now=now_ms(), name=name)

    def delete_org(self, access: OrgAccess) -> None:
        access.require("organization:delete")
        with self._engine.begin() as conn:
            if store.list_projects(conn, access.id):
                raise AccountError("Delete the organisation's projects first.")
            # deleting the organisation would cascade to the project rows the purge works from, stranding their
            # data (tracing tables have no foreign keys), so wait until the purge removed them
            if store.count_deleted_projects(conn, access.id):
                raise AccountError(
                    "The organisation's deleted projects are still being removed; try again in a few minutes."
                )
            store.delete_organization(conn, access.id)

    def list_org_projects(self, access: OrgAccess) -> list[dict[str, Any]]:
        with self._engine.connect() as conn:
            projects = store.list_projects(conn, access.id)
            out = []
            for project in projects:
                role = rbac.effective_project_role(
                    access.role,
                    store.get_project_role(conn, project["id"], access.user.id),
                    instance_admin=access.user.admin,
                )
                if role is not None:
                    out.append({**project, "role": role})
        return out

    # --- members --------------------------------------------------------------------------------------------

    def list_members(self, access: OrgAccess) -> list[dict[str, Any]]:
        access.require("organizationMembers:read")
        with self._engine.connect() as conn:
            return store.list_org_members(conn, access.id)

    def add_member(self, access: OrgAccess, email: str, role: str) -> None:
        access.require("organizationMembers:CUD")
        role = _clean_role(role)
        if not rbac.can_assign(access.role, None, role):
            raise Forbidden("organizationMembers:CUD")
        with self._engine.begin() as conn:
            user = store.get_user_by_email(conn, (email or "").strip())
            if user is None:
                raise AccountError("No user with this email. They need to sign up first.")
            if store.get_org_role(conn, access.id, user["id"]) is not None:
                raise AccountError("This user is already a member.")
            store.upsert_org_membership(
                conn, id=str(uuid.uuid4()), org_id=access.id, user_id=user["id"], role=role, now=now_ms()
            )
            record_audit(
                conn,
                org_id=access.id,
                actor=Actor.user(access.user),
                action="membership.create",
                resource_type="membership",
                resource_id=user["id"],
                after={"email": user["email"], "role": role},
            )

    def _owners(self, conn, org_id: str) -> int:
        return sum(1 for m in store.list_org_members(conn, org_id) if m["role"] == "OWNER")

    def set_member_role(self, access: OrgAccess, user_id: str, role: str) -> None:
        access.require("organizationMembers:CUD")
        role = _clean_role(role)
        with self._engine.begin() as conn:
            current = store.get_org_role(conn, access.id, user_id)
            if current is None:
                raise AccountError("This user is not a member.")
            if not rbac.can_assign(access.role, current, role):
                raise Forbidden("organizationMembers:CUD")
            if current == "OWNER" and role != "OWNER" and self._owners(conn, access.id) <= 1:
                raise AccountError("An organisation needs at least one owner.")
            store.upsert_org_membership(
                conn, id=str(uuid.uuid4()), org_id=access.id, user_id=user_id, role=role, now=now_ms()
            )
            if role != current:
                record_audit(
                    conn,
                    org_id=access.id,
                    actor=Actor.user(access.user),
                    action="membership.update",
                    resource_type="membership",
                    resource_id=user_id,
                    before={"role": current},
                    after={"role": role},
                )

    def remove_member(self, access: OrgAccess, user_id: str) -> None:
        leaving = user_id == access.user.id
        if not leaving:
            access.require("organizationMembers:CUD")
        with self._engine.begin() as conn:
            current = store.get_org_role(conn, access.id, user_id)
            if current is None:
                raise AccountError("This user is not a member.")
            # anyone may leave; removing someone else needs a rank at least theirs
            if not leaving and not rbac.can_assign(access.role, current, None):
                raise Forbidden("organizationMembers:CUD")
            if current == "OWNER" and self._owners(conn, access.id) <= 1:
                raise AccountError("An organisation needs at least one owner.")
            store.delete_org_membership(conn, access.id, user_id)
            # project roles in this organisation go with the membership (a later invitation starts afresh)
            admin_store.delete_project_memberships_in_org(conn, access.id, user_id)
            record_audit(
                conn,
                org_id=access.id,
                actor=Actor.user(access.user),
                action="membership.delete",
                resource_type="membership",
                resource_id=user_id,
                before={"role": current},
            )

    # --- projects -------------------------------------------------------------------------------------------

    def project_access(self, user: User, project_id: str) -> ProjectAccess:
        with self._engine.connect() as conn:
            project = store.get_project_with_org(conn, project_id)
            if project is None:
                raise NoAccess(project_id)
            role = rbac.effective_project_role(
                store.get_org_role(conn, project["org_id"], user.id),
                store.get_project_role(conn, project_id, user.id),
                instance_admin=user.admin,
            )
        if role is None:
            raise NoAccess(project_id)
        return ProjectAccess(user, project, role, rbac.project_scopes(role))

    def accessible_projects(self, user: User) -> list[str]:
        return [p["id"] for org in self.list_orgs(user) for p in org["projects"]]

    def create_project(self, access: OrgAccess, name: str) -> str:
        access.require("projects:create")
        name = _clean_name(name, "Project")
        project_id = str(uuid.uuid4())
        with self._engine.begin() as conn:
            store.create_project(conn, id=project_id, org_id=access.id, name=name, now=now_ms())
        return project_id

    def rename_project(self, access: ProjectAccess, name: str) -> None:
        access.require("project:update")
        name = _clean_name(name, "Project")
        with self._engine.begin() as conn:
            store.update_project(conn, access.id, now=now_ms(), name=name)

    def delete_project(self, access: ProjectAccess) -> None:
        """Soft delete: the project disappears at once and its keys stop working. Its data (traces, events,
        media and their bytes, prompts, datasets, ... and finally the project row) is removed by the background
        purge, ``services/accounts/project_purge.py``, once ``LIGHTFUSE_PROJECT_PURGE_GRACE_SECONDS`` have passed (as in
        Langfuse, deletion is asynchronous)."""
        access.require("project:delete")
        now = now_ms()
        with self._engine.begin() as conn:
            keys = store.list_api_keys(conn, access.id)
            store.update_project(conn, access.id, now=now, deleted_at=now)
            record_audit(
                conn,
                org_id=access.org_id,
                actor=Actor.user(access.user),
                action="project.delete",
                resource_type="project",
                resource_id=access.id,
                project_id=access.id,
                before={"name": access.project["name"]},
            )
        for key in keys:
            self._keys.delete_key(access.id, key["id"])

    # --- API keys -------------------------------------------------------------------------------------------

    def list_api_keys(self, access: ProjectAccess) -> list[dict[str, Any]]:
        access.require("apiKeys:read")
        # last-use times are buffered in memory; write them first so the list is current
        self._keys.flush_last_used()
        with self._engine.connect() as conn:
            rows = store.list_api_keys(conn, access.id)
        return [{**listed_key(r), "expiresAt": r.get("expires_at")} for r in rows]

    def create_api_key(self, access: ProjectAccess, note: str | None) -> IssuedKey:
        access.require("apiKeys:CUD")
        note = (note or "").strip()[:MAX_NAME_LENGTH] or None
        with self._engine.begin() as conn:
            key = self._keys.create_key(access.id, note=note, conn=conn)
            record_audit(
                conn,
                org_id=access.org_id,
                actor=Actor.user(access.user),
                action="apiKey.create",
                resource_type="apiKey",
                resource_id=key.id,
                project_id=access.id,
                after={"publicKey": key.public_key, "note": note},
            )
        return key

    def delete_api_key(self, access: ProjectAccess, key_id: str) -> bool:
        access.require("apiKeys:CUD")
        deleted = self._keys.delete_key(access.id, key_id)
        if deleted:
            with self._engine.begin() as conn:
                record_audit(
                    conn,
                    org_id=access.org_id,
                    actor=Actor.user(access.user),
                    action="apiKey.delete",
                    resource_type="apiKey",
                    resource_id=key_id,
                    project_id=access.id,
                )
        return deleted
