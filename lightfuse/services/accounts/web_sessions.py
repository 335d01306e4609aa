"""Server-side browser sessions: what makes sign-out, password changes and "sign out everywhere" final.

The cookie carries a random token (256 bits); the ``web_sessions`` table holds only its SHA-256, the user,
created/last-seen/expiry times and when it was revoked. Every signed-in request looks the token up (one indexed
query, joined with the user row it needs anyway), so a revoked session stops working at once, on every
replica. Expiry is ``AUTH_SESSION_MAX_AGE`` from sign-in. Revoked and expired rows are deleted now and then.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time

from sqlalchemy import Engine

from lightfuse.services.accounts.web_accounts import User
from lightfuse.store.sql import web_auth as store

# last-seen is a hint for the account page, not a security control: write it at most this often per session
_TOUCH_EVERY_MS = 5 * 60 * 1000
_CLEANUP_EVERY_S = 600
# revoked rows are kept this long (what a "when was I signed out" question may want), then deleted
_KEEP_REVOKED_MS = 24 * 3600 * 1000


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def _now_ms() -> int:
    return int(time.time() * 1000)


class WebSessions:
    def __init__(self, engine: Engine, max_age_s: int) -> None:
        self._engine = engine
        self.max_age_s = max_age_s
        self._lock = threading.Lock()
        self._next_cleanup = 0.0

    def start(self, user_id: str, replacing: str | None = None) -> str:
        """A new session for the user (its token goes into the cookie); ``replacing``, the token of the session
        the browser had, is revoked, so a session id never survives a sign-in (session fixation)."""
        token = secrets.token_urlsafe(32)
        now = _now_ms()
        with self._engine.begin() as conn:
            if replacing:
                store.revoke_session(conn, _hash(replacing), now)
            store.create_session(
                conn, id_hash=_hash(token), user_id=user_id, now=now, expires_at=now + self.max_age_s * 1000
            )
        self._maybe_cleanup(now)
        return token

    def resolve(self, token: str | None, user_id: str | None) -> User | None:
        """The signed-in user of a live session, or None (unknown, revoked, expired, or another user's)."""
        if not token or not user_id:
            return None
        now = _now_ms()
        id_hash = _hash(token)
        with self._engine.connect() as conn:
            row = store.get_live_session(conn, id_hash, now)
        if row is None or row["user_id"] != user_id:
            return None
        if now - row["last_seen_at"] > _TOUCH_EVERY_MS:
            with self._engine.begin() as conn:
                store.touch_session(conn, id_hash, now)
        return User(id=row["user_id"], email=row["email"], name=row.get("name"), admin=bool(row.get("admin")))

    def end(self, token: str | None) -> None:
        if token:
            with self._engine.begin() as conn:
                store.revoke_session(conn, _hash(token), _now_ms())

    def end_all(self, user_id: str, keep: str | None = None) -> int:
        """Revoke every session of the user except the one whose token is ``keep``; the number revoked."""
        with self._engine.begin() as conn:
            return store.revoke_user_sessions(conn, user_id, _now_ms(), _hash(keep) if keep else None)

    def _maybe_cleanup(self, now: int) -> None:
        with self._lock:
            if time.monotonic() < self._next_cleanup:
                return
            self._next_cleanup = time.monotonic() + _CLEANUP_EVERY_S
        with self._engine.begin() as conn:
            store.delete_dead_sessions(conn, expired_before=now, revoked_before=now - _KEEP_REVOKED_MS)
