"""Invitations to an organisation (optionally with a role in one of its projects), by email or copied link.

An invitation is a random token (256 bits) whose SHA-256 is stored with the address, the roles, an expiry of
7 days and who sent it. Only OWNER/ADMIN invite, and nobody grants a role above their own (an ADMIN cannot
invite an OWNER). Opening the link signed in as the invited address joins at once; otherwise the page offers
an account for that address, also when sign-up is disabled (the invitation is the permission, so an instance
with AUTH_DISABLE_SIGNUP can still grow). A token works once: accepting marks the row in a conditional UPDATE,
so of two concurrent uses one wins. Revoked, accepted and expired invitations are refused alike.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from lightfuse.services.accounts.audit_log import Actor, record_audit
from lightfuse.services.accounts.web_accounts import AccountError, Forbidden, OrgAccess, User
from lightfuse.services.auth import rbac
from lightfuse.services.common.clock import now_ms
from lightfuse.store.sql import accounts as store
from lightfuse.store.sql import user_admin as admin_store
from lightfuse.store.sql.transactions import write_transaction

INVITATION_TTL_MS = 7 * 24 * 3600 * 1000


class InvalidInvitation(LookupError):
    """Unknown, expired, revoked or already used: the page says so without telling which."""


def token_hash(token: str) -> str:
    return hashlib.sha256((token or "").encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class Invitation:
    id: str
    org_id: str
    org_name: str
    email: str
    org_role: str
    project_id: str | None
    project_name: str | None
    project_role: str | None
    expires_at: int


def _clean_email(email: str | None) -> str:
    email = (email or "").strip().lower()
    if "@" not in email or len(email) > 320 or any(c.isspace() for c in email) or email.count("@") != 1:
        raise AccountError("Enter a valid email address.")
    return email


class Invitations:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    # --- the inviting side ----------------------------------------------------------------------------------

    def create(
        self,
        access: OrgAccess,
        email: str,
        org_role: str,
        project_id: str | None = None,
        project_role: str | None = None,
    ) -> tuple[Invitation, str]:
        """(the invitation, its token). The token is returned once, for the email or the link to copy."""
        access.require("organizationMembers:CUD")
        email = _clean_email(email)
        org_role = (org_role or "").strip().upper()
        if org_role not in rbac.ROLES:
            raise AccountError(f"Role must be one of {', '.join(rbac.ROLES)}.")
        if not rbac.can_assign(access.role, None, org_role):
            raise Forbidden("organizationMembers:CUD")
        project_id = (project_id or "").strip() or None
        project_role = (project_role or "").strip().upper() or None
        if project_role is not None and project_role not in rbac.ROLES:
            raise AccountError(f"Project role must be one of {', '.join(rbac.ROLES)}.")
        if project_role and not project_id:
            raise AccountError("Choose the project the project role is for.")
        if project_role is None:
            project_id = None  # a project without a role of its own adds nothing to the org role
        if project_role is not None and not rbac.can_assign(access.role, None, project_role):
            raise Forbidden("projectMembers:CUD")
        token = secrets.token_urlsafe(32)
        now = now_ms()
        invitation_id = str(uuid.uuid4())
        with write_transaction(self._engine) as conn:
            project = None
            if project_id:
                project = store.get_project(conn, project_id)
                if project is None or project["org_id"] != access.id:
                    raise AccountError("No such project in this organisation.")
            existing = store.get_user_by_email(conn, email)
            if existing is not None and store.get_org_role(conn, access.id, existing["id"]) is not None:
                raise AccountError("This person is already a member.")
            admin_store.revoke_pending_invitations_for(conn, access.id, email, now)
            admin_store.create_invitation(
                conn,
                id=invitation_id,
                org_id=access.id,
                email=email,
                org_role=org_role,
                project_id=project_id,
                project_role=project_role if project_id else None,
                token_hash=token_hash(token),
                invited_by_user_id=access.user.id,
                created_at=now,
                expires_at=now + INVITATION_TTL_MS,
            )
            record_audit(
                conn,
                org_id=access.id,
                actor=Actor.user(access.user),
                action="invitation.create",
                resource_type="invitation",
                resource_id=invitation_id,
                project_id=project_id,
                after={
                    "email": email,
                    "orgRole": org_role,
                    "projectId": project_id,
                    "projectRole": project_role,
                },
            )
        invitation = Invitation(
            invitation_id,
            access.id,
            access.org["name"],
            email,
            org_role,
            project_id,
            project["name"] if project else None,
            project_role,
            now + INVITATION_TTL_MS,
        )
        return invitation, token

    def list_pending(self, access: OrgAccess) -> list[dict[str, Any]]:
        access.require("organizationMembers:read")
        with self._engine.connect() as conn:
            return admin_store.list_pending_invitations(conn, access.id, now_ms())

    def revoke(self, access: OrgAccess, invitation_id: str) -> None:
        access.require("organizationMembers:CUD")
        with write_transaction(self._engine) as conn:
            row = admin_store.get_invitation(conn, access.id, invitation_id)
            if row is None:
                raise AccountError("No such invitation.")
            if not rbac.can_assign(access.role, None, row["org_role"]):
                raise Forbidden("organizationMembers:CUD")
            if not admin_store.mark_invitation(conn, invitation_id, revoked_at=now_ms()):
                raise AccountError("This invitation is no longer pending.")
            record_audit(
                conn,
                org_id=access.id,
                actor=Actor.user(access.user),
                action="invitation.delete",
                resource_type="invitation",
                resource_id=invitation_id,
                project_id=row["project_id"],
                before={"email": row["email"], "orgRole": row["org_role"]},
            )

    # --- the invited side -----------------------------------------------------------------------------------

    def _live_row(self, conn, token: str) -> dict:
        row = admin_store.get_invitation_by_token_hash(conn, token_hash(token)) if token else None
        if (
            row is None
            or row["accepted_at"] is not None
            or row["revoked_at"] is not None
            or row["expires_at"] <= now_ms()
        ):
            raise InvalidInvitation()
        return row

    def lookup(self, token: str) -> Invitation:
        with self._engine.connect() as conn:
            return self.lookup_in(conn, token)

    def accept(self, token: str, user: User, conn=None) -> Invitation:
        """Join with the invitation's roles. The signed-in user must be the invited address."""
        if conn is None:
            with write_transaction(self._engine) as c:
                return self.accept(token, user, c)
        invitation = self.lookup_in(conn, token)
        if user.email.lower() != invitation.email:
            raise AccountError(f"This invitation is for {invitation.email}. Sign in with that address.")
        now = now_ms()
        if not admin_store.mark_invitation(conn, invitation.id, accepted_at=now):
            raise InvalidInvitation()
        current = store.get_org_role(conn, invitation.org_id, user.id)
        # an existing member keeps a higher role; an invitation never demotes
        if current is None or rbac.ROLE_RANK.get(current, 0) < rbac.ROLE_RANK[invitation.org_role]:
            store.upsert_org_membership(
                conn,
                id=str(uuid.uuid4()),
                org_id=invitation.org_id,
                user_id=user.id,
                role=invitation.org_role,
                now=now,
            )
        if invitation.project_id and invitation.project_role:
            store.upsert_project_membership(
                conn, project_id=invitation.project_id, user_id=user.id, role=invitation.project_role, now=now
            )
        actor = Actor.user(user)
        record_audit(
            conn,
            org_id=invitation.org_id,
            actor=actor,
            action="invitation.accept",
            resource_type="invitation",
            resource_id=invitation.id,
            project_id=invitation.project_id,
        )
        record_audit(
            conn,
            org_id=invitation.org_id,
            actor=actor,
            action="membership.create",
            resource_type="membership",
            resource_id=user.id,
            project_id=invitation.project_id,
            before={"role": current} if current else None,
            after={
                "email": user.email,
                "role": max(current or "NONE", invitation.org_role, key=lambda r: rbac.ROLE_RANK.get(r, 0)),
                "projectRole": invitation.project_role,
            },
        )
        return invitation

    def lookup_in(self, conn, token: str) -> Invitation:
        row = self._live_row(conn, token)
        project = store.get_project(conn, row["project_id"]) if row["project_id"] else None
        org = store.get_organization(conn, row["org_id"])
        return Invitation(
            row["id"],
            row["org_id"],
            org["name"] if org else "",
            row["email"],
            row["org_role"],
            row["project_id"] if project else None,
            project["name"] if project else None,
            row["project_role"] if project else None,
            row["expires_at"],
        )

    async def sign_up_and_accept(
        self,
        auth,
        token: str,
        password: str,
        name: str | None,
        address: str | None,
        old_token: str | None = None,
    ) -> tuple[User, str, Invitation]:
        """A new account for the invited address (allowed with sign-up disabled), then the invitation
        accepted; (user, session token, invitation). ``auth`` is the ``WebAuth`` (throttle, pool, sessions)."""
        from lightfuse.services.accounts.accounts import hash_password

        invitation = await auth._in_db_thread(self.lookup, token)
        key = auth.throttle.address(address, "signup")
        await auth._in_db_thread(self._checked_sign_up, auth, key, invitation.email, password or "")
        password_hash = await auth.pool.run(hash_password, password)
        user = await auth._in_db_thread(
            self._create_and_accept, auth, token, invitation.email, password_hash, name
        )
        session_token = await auth._in_db_thread(auth.sessions.start, user.id, old_token)
        return user, session_token, invitation

    @staticmethod
    def _checked_sign_up(auth, key, email: str, password: str) -> None:
        auth.throttle.check([key])
        auth.accounts.check_sign_up(email, password)
        auth.throttle.failed([key])

    def _create_and_accept(self, auth, token: str, email: str, password_hash: str, name: str | None) -> User:
        # one transaction: a refused (already used) invitation leaves no account behind
        with write_transaction(self._engine) as conn:
            user = auth.accounts.create_user_with_hash(email, password_hash, name, conn=conn)
            self.accept(token, user, conn)
        return user
