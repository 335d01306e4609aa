"""Password sign-in, sign-up and password change for the web UI: throttled, with argon2 in its own pool.

Order of work for every form that checks or hashes a password: the throttle first (a locked key is refused
before any argon2 work), then the password work in ``PasswordPool`` (bounded; ``HashingBusy`` when full), then
the bookkeeping. The short database steps run in a few threads of their own (``_AUTH_DB_THREADS``) and the
argon2 work in the pool, both awaited: a flood of sign-ins takes none of the request thread pool (Starlette's
default limiter, 40 threads) that the API routes run in. Raises ``Throttled`` (429), ``HashingBusy`` (503) and
``AccountError`` (form errors).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from lightfuse.services.accounts.accounts import hash_password, verify_password
from lightfuse.services.accounts.login_throttle import LoginThrottle, ThrottleKey
from lightfuse.services.accounts.password_pool import PasswordPool
from lightfuse.services.accounts.web_accounts import AccountError, User, WebAccounts
from lightfuse.services.accounts.web_sessions import WebSessions

T = TypeVar("T")
_AUTH_DB_THREADS = 4


class WebAuth:
    def __init__(
        self, accounts: WebAccounts, sessions: WebSessions, throttle: LoginThrottle, pool: PasswordPool
    ) -> None:
        self.accounts = accounts
        self.sessions = sessions
        self.throttle = throttle
        self.pool = pool
        self._db = ThreadPoolExecutor(max_workers=_AUTH_DB_THREADS, thread_name_prefix="lightfuse-auth-db")

    async def _in_db_thread(self, fn: Callable[..., T], *args) -> T:
        return await asyncio.wrap_future(self._db.submit(fn, *args))

    def _checked_lookup(self, keys: list[ThrottleKey], email: str):
        self.throttle.check(keys)
        return self.accounts.password_hash_for_sign_in(email)

    async def sign_in(
        self, email: str, password: str, address: str | None, old_token: str | None = None
    ) -> tuple[User, str] | None:
        """(user, new session token) for the right password, None for a wrong one."""
        keys = [self.throttle.account(email), self.throttle.address(address)]
        user, password_hash = await self._in_db_thread(self._checked_lookup, keys, email)
        # unknown users are verified against a dummy hash: same work, so timing does not reveal accounts
        ok = await self.pool.run(verify_password, password_hash, password or "")
        if not ok or user is None:
            await self._in_db_thread(self.throttle.failed, keys)
            return None
        await self._in_db_thread(self.throttle.succeeded, keys[0])
        token = await self._in_db_thread(self.sessions.start, user.id, old_token)
        return user, token

    def _checked_sign_up(self, key: ThrottleKey, email: str, password: str) -> str:
        self.throttle.check([key])
        email = self.accounts.check_sign_up(email, password)
        # every sign-up that gets as far as hashing counts against the address, wanted or not
        self.throttle.failed([key])
        return email

    async def sign_up(
        self, email: str, password: str, name: str | None, address: str | None, old_token: str | None = None
    ) -> tuple[User, str]:
        key = self.throttle.address(address, "signup")
        email = await self._in_db_thread(self._checked_sign_up, key, email, password or "")
        password_hash = await self.pool.run(hash_password, password)
        user = await self._in_db_thread(self.accounts.create_user_with_hash, email, password_hash, name)
        token = await self._in_db_thread(self.sessions.start, user.id, old_token)
        return user, token

    def _checked_hash_of(self, keys: list[ThrottleKey], user_id: str) -> str | None:
        self.throttle.check(keys)
        return self.accounts.password_hash_of(user_id)

    async def change_password(
        self, user: User, current: str, new: str, address: str | None, old_token: str | None
    ) -> str:
        """Set a new password and end every session of the user; the token of the fresh session that replaces
        the current one."""
        self.accounts.check_new_password(new)
        keys = [self.throttle.account(user.email), self.throttle.address(address)]
        password_hash = await self._in_db_thread(self._checked_hash_of, keys, user.id)
        if not await self.pool.run(verify_password, password_hash, current or ""):
            await self._in_db_thread(self.throttle.failed, keys)
            raise AccountError("The current password is wrong.")
        new_hash = await self.pool.run(hash_password, new)
        await self._in_db_thread(self.accounts.set_password_hash, user.id, new_hash)
        await self._in_db_thread(self.sessions.end_all, user.id)
        return await self._in_db_thread(self.sessions.start, user.id, old_token)

    def sign_out(self, token: str | None) -> None:
        self.sessions.end(token)

    def sign_out_everywhere(self, user: User) -> int:
        return self.sessions.end_all(user.id)
