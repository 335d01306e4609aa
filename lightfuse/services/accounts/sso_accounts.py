"""Who an SSO sign-in is: the linked user, a linked existing account, or a new one; and the roles groups give.

Order of lookup for an identity the provider vouched for (``sso_oidc.Identity``):

1. a user already linked to (provider, subject) (table ``sso_accounts``): that user, whatever the email says
   now (an email changed at the identity provider still finds the account);
2. a user with the same email: linked only when the provider has ``AUTH_<P>_ALLOW_ACCOUNT_LINKING`` set AND the
   provider says the email is verified. Langfuse links on the email alone; here an identity provider that lets
   people type any email cannot take over an existing account;
3. otherwise a new user (no password) is created and linked, whatever ``AUTH_DISABLE_SIGNUP`` says (the
   identity provider decides who may come in), and joins the ``LANGFUSE_DEFAULT_ORG_ID``/``_PROJECT_ID``
   organisations and projects.

Then, at every sign-in, ``LIGHTFUSE_SSO_ROLE_MAPPING`` sets the roles in every organisation and project it
names from the groups in ``LIGHTFUSE_SSO_ROLE_CLAIM`` (highest role wins; no matching group removes the
membership). Memberships in organisations and projects the mapping does not name are left alone. Everything
for one sign-in happens in one transaction: a refused sign-in creates nothing.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import IntegrityError

from lightfuse.services.accounts.sso_config import NewUserDefaults, ProviderConfig, RoleRule
from lightfuse.services.accounts.sso_oidc import Identity, SsoFailure, _claim
from lightfuse.services.accounts.web_accounts import User
from lightfuse.services.auth import rbac
from lightfuse.services.common.clock import now_ms
from lightfuse.store.sql import accounts as accounts_store
from lightfuse.store.sql import sso as store
from lightfuse.store.sql.transactions import write_transaction

log = logging.getLogger("lightfuse.sso")
_MAX_NAME = 255


def _user(row: dict[str, Any]) -> User:
    return User(id=row["id"], email=row["email"], name=row.get("name"), admin=bool(row.get("admin")))


def groups_of(claims: dict, claim: str) -> set[str]:
    """The groups (or roles) in the claim: a list or a single string; Keycloak's leading ``/`` dropped."""
    value = _claim(claims, claim)
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        return set()
    return {item.strip().lstrip("/") for item in value if isinstance(item, str) and item.strip()}


def apply_new_user_defaults(conn: Connection, user_id: str, defaults: NewUserDefaults, now: int) -> None:
    """LANGFUSE_DEFAULT_ORG_ID/ROLE and _PROJECT_ID/ROLE for a user just created (unknown ids are skipped)."""
    for org_id in defaults.orgs:
        if store.org_exists(conn, org_id):
            accounts_store.upsert_org_membership(
                conn, id=str(uuid.uuid4()), org_id=org_id, user_id=user_id, role=defaults.org_role, now=now
            )
        else:
            log.warning("LANGFUSE_DEFAULT_ORG_ID names an organisation that does not exist: %s", org_id)
    for project_id in defaults.projects:
        _grant_project(conn, user_id, project_id, defaults.project_role, now)


def _grant_project(conn: Connection, user_id: str, project_id: str, role: str, now: int) -> None:
    org_id = store.project_org(conn, project_id) if store.project_exists(conn, project_id) else None
    if org_id is None:
        log.warning("a project named in the SSO/default settings does not exist: %s", project_id)
        return
    # a project role is reached through its organisation: a member without one gets the org role NONE
    if accounts_store.get_org_role(conn, org_id, user_id) is None:
        accounts_store.upsert_org_membership(
            conn, id=str(uuid.uuid4()), org_id=org_id, user_id=user_id, role="NONE", now=now
        )
    accounts_store.upsert_project_membership(conn, project_id=project_id, user_id=user_id, role=role, now=now)


class SsoAccounts:
    def __init__(
        self, engine: Engine, defaults: NewUserDefaults, rules: list[RoleRule], role_claim: str
    ) -> None:
        self._engine = engine
        self.defaults = defaults
        self.rules = rules
        self.role_claim = role_claim

    def sign_in(self, identity: Identity, provider: ProviderConfig) -> User:
        # two first sign-ins of the same person at once: the loser of the insert race finds the winner's rows
        for attempt in range(2):
            try:
                # reads then writes: on SQLite the write lock is taken first (see store/sql/transactions.py)
                with write_transaction(self._engine) as conn:
                    user = self._resolve(conn, identity, provider)
                    if self.rules:
                        self._apply_roles(conn, user.id, groups_of(identity.claims, self.role_claim))
                    return user
            except IntegrityError:
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def _resolve(self, conn: Connection, identity: Identity, provider: ProviderConfig) -> User:
        now = now_ms()
        linked = store.get_linked_user(conn, identity.provider, identity.subject)
        if linked is not None:
            store.touch_account(conn, identity.provider, identity.subject, identity.email, now)
            return _user(linked)
        if not identity.email:
            raise SsoFailure(
                403,
                "The identity provider did not share your email address, which an account "
                "needs. Ask your administrator to release the email claim.",
                "no_email",
            )
        existing = accounts_store.get_user_by_email(conn, identity.email)
        if existing is not None:
            # a first sign-in of the same identity may have committed the user and its link since the lookup
            # above (Postgres reads each statement at its own snapshot): look again before refusing
            linked = store.get_linked_user(conn, identity.provider, identity.subject)
            if linked is not None:
                return _user(linked)
            if not provider.allow_linking:
                raise SsoFailure(
                    403,
                    "An account with this email already exists and is not linked to "
                    f"{provider.name}. Sign in the way you did before.",
                    "linking_disabled",
                )
            if not identity.email_verified:
                raise SsoFailure(
                    403,
                    f"An account with this email already exists, and {provider.name} has not "
                    "verified that this email is yours, so it cannot be linked.",
                    "email_unverified",
                )
            store.link_account(
                conn,
                provider=identity.provider,
                subject=identity.subject,
                user_id=existing["id"],
                email=identity.email,
                now=now,
            )
            log.info("sso: linked %s identity to an existing user %s", identity.provider, existing["id"])
            return _user(existing)
        user_id = str(uuid.uuid4())
        accounts_store.create_user(
            conn,
            id=user_id,
            email=identity.email,
            name=(identity.name or "")[:_MAX_NAME] or None,
            password_hash=None,
            now=now,
        )
        store.link_account(
            conn,
            provider=identity.provider,
            subject=identity.subject,
            user_id=user_id,
            email=identity.email,
            now=now,
        )
        apply_new_user_defaults(conn, user_id, self.defaults, now)
        log.info("sso: created user %s at first %s sign-in", user_id, identity.provider)
        row = accounts_store.get_user(conn, user_id)
        assert row is not None  # inserted in this transaction
        return _user(row)

    def _apply_roles(self, conn: Connection, user_id: str, groups: set[str]) -> None:
        now = now_ms()
        desired: dict[tuple[str, str], str] = {}
        for rule in self.rules:
            key = (rule.kind, rule.target)
            desired.setdefault(key, "")
            if rule.group in groups and rbac.ROLE_RANK[rule.role] > rbac.ROLE_RANK.get(desired[key], -1):
                desired[key] = rule.role
        # organisations first, so that a project grant's NONE membership is not removed again
        for (kind, target), role in sorted(desired.items(), key=lambda kv: kv[0][0] != "org"):
            if kind == "org":
                if not store.org_exists(conn, target):
                    log.warning(
                        "LIGHTFUSE_SSO_ROLE_MAPPING names an organisation that does not exist: %s", target
                    )
                elif role:
                    accounts_store.upsert_org_membership(
                        conn, id=str(uuid.uuid4()), org_id=target, user_id=user_id, role=role, now=now
                    )
                else:
                    store.delete_org_membership(conn, target, user_id)
            elif role:
                _grant_project(conn, user_id, target, role, now)
            else:
                store.delete_project_membership(conn, target, user_id)

    def links_of(self, user_id: str) -> list[dict]:
        with self._engine.connect() as conn:
            return store.list_user_links(conn, user_id)
