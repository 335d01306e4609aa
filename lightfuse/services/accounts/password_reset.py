"""Password reset by email: a single-use link, valid one hour, stored as its SHA-256 only.

Requests are throttled like sign-ins (``login_throttle``): every request counts against the account
(normalised email) and the client address, under keys of their own so that reset requests never lock anyone
out of signing in. The answer is the same whether or not the address has an account (no account discovery);
the email is only sent for an existing one. Without SMTP no link is shown (that would hand any account to
whoever asks), so the page says to ask an administrator. Using a link sets the password, marks every other
link of the user used, ends all the user's sessions and writes an audit entry in each of their organisations.
"""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import Engine

from lightfuse.services.accounts.accounts import hash_password
from lightfuse.services.accounts.audit_log import Actor, record_audit
from lightfuse.services.accounts.login_throttle import ThrottleKey, address_key, normalise_email
from lightfuse.services.accounts.web_accounts import User
from lightfuse.services.common.clock import now_ms
from lightfuse.store.sql import accounts as store
from lightfuse.store.sql import user_admin as admin_store
from lightfuse.store.sql.transactions import write_transaction

RESET_TTL_MS = 3600 * 1000


class InvalidResetToken(LookupError):
    pass


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


class PasswordResets:
    def __init__(self, engine: Engine, auth) -> None:
        """``auth``: the ``WebAuth`` (its throttle, password pool, accounts and sessions are reused)."""
        self._engine = engine
        self._auth = auth

    def keys(self, email: str, address: str | None) -> list[ThrottleKey]:
        policy = self._auth.throttle.policy
        return [
            ThrottleKey("reset-acct:" + _sha(normalise_email(email))[:40], policy.account_limit),
            ThrottleKey("reset-addr:" + address_key(address), policy.address_limit),
        ]

    def _request(self, email: str, address: str | None) -> tuple[User, str] | None:
        keys = self.keys(email, address)
        throttle = self._auth.throttle
        throttle.check(keys)  # raises Throttled (429)
        # every request counts: sending mail is the cost being limited, and probing addresses the abuse
        throttle.failed(keys)
        user, _hash = self._auth.accounts.password_hash_for_sign_in(normalise_email(email))
        if user is None:
            return None
        token = secrets.token_urlsafe(32)
        now = now_ms()
        with write_transaction(self._engine) as conn:
            admin_store.delete_dead_reset_tokens(conn, now - 24 * 3600 * 1000)
            admin_store.create_reset_token(
                conn, token_hash=_sha(token), user_id=user.id, now=now, expires_at=now + RESET_TTL_MS
            )
        return user, token

    async def request(self, email: str, address: str | None) -> tuple[User, str] | None:
        """(user, token) to email, or None when no account has the address. Raises ``Throttled``."""
        return await self._auth._in_db_thread(self._request, email, address)

    def check(self, token: str) -> None:
        """Raise ``InvalidResetToken`` unless the link is live (the form is shown only for a live link)."""
        with self._engine.connect() as conn:
            row = admin_store.get_reset_token(conn, _sha(token or "")) if token else None
        if row is None or row["used_at"] is not None or row["expires_at"] <= now_ms():
            raise InvalidResetToken()

    def _apply(self, token: str, password_hash: str) -> str:
        now = now_ms()
        with write_transaction(self._engine) as conn:
            user_id = admin_store.use_reset_token(conn, _sha(token), now)
            if user_id is None:
                raise InvalidResetToken()
            store.update_user(conn, user_id, now=now, password_hash=password_hash)
            admin_store.invalidate_reset_tokens(conn, user_id, now)
            user = store.get_user(conn, user_id)
            actor = Actor("USER", user_id, user["email"] if user else None)
            for org in store.list_organizations_for_user(conn, user_id):
                record_audit(
                    conn,
                    org_id=org["id"],
                    actor=actor,
                    action="user.passwordReset",
                    resource_type="user",
                    resource_id=user_id,
                )
        self._auth.sessions.end_all(user_id)
        return user_id

    async def reset(self, token: str, new_password: str) -> str:
        """Set the new password with a live link (once); the user id. Raises ``InvalidResetToken`` or
        ``AccountError`` (password too short)."""
        self._auth.accounts.check_new_password(new_password)
        await self._auth._in_db_thread(self.check, token)
        password_hash = await self._auth.pool.run(hash_password, new_password)
        return await self._auth._in_db_thread(self._apply, token, password_hash)
