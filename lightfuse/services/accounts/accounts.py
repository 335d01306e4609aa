"""Users, organisations, projects and memberships; headless provisioning from LANGFUSE_INIT_*."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Engine

from lightfuse.config import InitSettings
from lightfuse.services.auth.api_keys import ApiKeyService, display_secret
from lightfuse.services.common.clock import now_ms
from lightfuse.store.sql import accounts
from lightfuse.store.sql.database import serialise_setup

log = logging.getLogger(__name__)

ROLES = ("OWNER", "ADMIN", "MEMBER", "VIEWER")
_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


_dummy_hash: str | None = None


def _hash_for_unknown_users() -> str:
    # computed once, lazily: a real hash with the hasher's parameters, so verifying against it costs the same
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = _hasher.hash("lightfuse-no-such-user")
    return _dummy_hash


def verify_password(password_hash: str | None, password: str) -> bool:
    if not password_hash:
        # verify against a dummy hash: the same work as a real check, so unknown users are not told apart by
        # timing; the result is thrown away
        try:
            _hasher.verify(_hash_for_unknown_users(), password)
        except (VerificationError, InvalidHashError):
            pass
        return False
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


@dataclass(frozen=True)
class Provisioned:
    org_id: str | None = None
    project_id: str | None = None
    public_key: str | None = None
    user_id: str | None = None


class AccountService:
    def __init__(self, engine: Engine, keys: ApiKeyService) -> None:
        self._engine = engine
        self._keys = keys

    def create_user(self, email: str, password: str | None, name: str | None = None) -> str:
        user_id = str(uuid.uuid4())
        with self._engine.begin() as conn:
            accounts.create_user(
                conn,
                id=user_id,
                email=email,
                name=name,
                password_hash=hash_password(password) if password else None,
                now=now_ms(),
            )
        return user_id

    def create_organization(
        self, name: str, owner_user_id: str | None = None, org_id: str | None = None
    ) -> str:
        org_id = org_id or str(uuid.uuid4())
        now = now_ms()
        with self._engine.begin() as conn:
            accounts.create_organization(conn, id=org_id, name=name, now=now)
            if owner_user_id:
                accounts.upsert_org_membership(
                    conn, id=str(uuid.uuid4()), org_id=org_id, user_id=owner_user_id, role="OWNER", now=now
                )
        return org_id

    def create_project(self, org_id: str, name: str, project_id: str | None = None) -> str:
        project_id = project_id or str(uuid.uuid4())
        with self._engine.begin() as conn:
            accounts.create_project(conn, id=project_id, org_id=org_id, name=name, now=now_ms())
        return project_id

    def get_project(self, project_id: str) -> dict | None:
        with self._engine.connect() as conn:
            return accounts.get_project_with_org(conn, project_id)

    def provision(self, init: InitSettings) -> Provisioned:
        """Apply LANGFUSE_INIT_*; running it again with the same settings changes nothing."""
        if not init.org_id:
            return Provisioned()
        now = now_ms()
        project_id = public_key = user_id = None
        with self._engine.begin() as conn:
            serialise_setup(conn)  # a replica starting at the same time provisions before or after, not with
            org = accounts.get_organization(conn, init.org_id)
            if org is None:
                accounts.create_organization(conn, id=init.org_id, name=init.org_name, now=now)
            elif org["name"] != init.org_name:
                accounts.update_organization(conn, init.org_id, now=now, name=init.org_name)

            if init.project_id:
                project_id = init.project_id
                project = accounts.get_project(conn, project_id)
                retention = init.project_retention if (init.project_retention or 0) >= 3 else None
                if project is None:
                    accounts.create_project(
                        conn,
                        id=project_id,
                        org_id=init.org_id,
                        name=init.project_name,
                        now=now,
                        retention_days=retention,
                    )
                elif project["name"] != init.project_name or project["org_id"] != init.org_id:
                    accounts.update_project(
                        conn, project_id, now=now, name=init.project_name, org_id=init.org_id
                    )

                if init.project_public_key and init.project_secret_key:
                    public_key = init.project_public_key
                    existing = accounts.get_api_key_by_public_key(conn, public_key)
                    keep = (
                        existing is not None
                        and existing["project_id"] == project_id
                        and self._keys.secret_matches(existing, init.project_secret_key)
                    )
                    if (
                        keep
                        and existing is not None
                        and existing["display_secret_key"] != display_secret(init.project_secret_key)
                    ):
                        # stored by an older version, whose display could show a short secret whole
                        accounts.set_api_key_display(
                            conn, existing["id"], display_secret(init.project_secret_key)
                        )
                    if not keep:
                        if existing is not None:
                            accounts.delete_api_key(conn, existing["id"], existing["project_id"])
                            self._keys.forget(public_key)
                        self._keys.create_key(
                            project_id,
                            note="Provisioned API Key",
                            public_key=public_key,
                            secret_key=init.project_secret_key,
                            conn=conn,
                        )

            if init.user_email and init.user_password:
                user = accounts.get_user_by_email(conn, init.user_email)
                if user is None:
                    user_id = str(uuid.uuid4())
                    accounts.create_user(
                        conn,
                        id=user_id,
                        email=init.user_email,
                        name=init.user_name,
                        password_hash=hash_password(init.user_password),
                        now=now,
                    )
                else:
                    user_id = user["id"]
                if accounts.get_org_role(conn, init.org_id, user_id) != "OWNER":
                    accounts.upsert_org_membership(
                        conn, id=str(uuid.uuid4()), org_id=init.org_id, user_id=user_id, role="OWNER", now=now
                    )
        log.info("provisioned organisation %s (project %s)", init.org_id, project_id)
        return Provisioned(org_id=init.org_id, project_id=project_id, public_key=public_key, user_id=user_id)
