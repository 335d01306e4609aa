"""The browser session cookie: signed, and for a signed-in user pointing at a server-side session.

Format: ``base64url(json payload) "." base64url(HMAC-SHA256(key, payload part))`` where the key is derived
from NEXTAUTH_SECRET, so rotating that secret signs everyone out. The payload holds the user id and the token
of the server-side session (``services/accounts/web_sessions.py``; both absent for an anonymous visitor), the CSRF token
of the session, the issue time and a one-shot flash message. The signature keeps anonymous state (CSRF token,
flash) honest; whether a signed-in session is still valid is decided by its row (sign-out revokes it).

The lifetime (AUTH_SESSION_MAX_AGE minutes) counts from sign-in and is not extended by activity; the browser
is told the same through the cookie's Max-Age.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import orjson

COOKIE_NAME = "lightfuse_session"
# tolerate clocks of several server processes disagreeing a little
_CLOCK_SKEW_S = 60


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


@dataclass
class WebSession:
    csrf: str
    issued_at: int
    user_id: str | None = None
    # the server-side session's token (its SHA-256 is the row's key)
    token: str | None = None
    flash: dict[str, str] | None = None
    # set when the cookie must be (re)written with the response
    dirty: bool = field(default=False, compare=False)

    @classmethod
    def anonymous(cls) -> WebSession:
        return cls(csrf=new_csrf_token(), issued_at=int(time.time()), dirty=True)

    def sign_in(self, user_id: str, token: str) -> None:
        """Start a fresh session: new CSRF token and issue time, so nothing from before sign-in carries over."""
        self.user_id, self.token = user_id, token
        self.csrf = new_csrf_token()
        self.issued_at = int(time.time())
        self.dirty = True

    def set_flash(self, message: str, kind: str = "info") -> None:
        self.flash = {"message": message, "kind": kind}
        self.dirty = True

    def pop_flash(self) -> dict[str, str] | None:
        flash, self.flash = self.flash, None
        if flash is not None:
            self.dirty = True
        return flash

    def payload(self) -> dict[str, Any]:
        data: dict[str, Any] = {"c": self.csrf, "i": self.issued_at}
        if self.user_id:
            data["u"], data["t"] = self.user_id, self.token
        if self.flash:
            data["f"] = self.flash
        return data


class SessionCodec:
    def __init__(self, secret: str, max_age_minutes: int) -> None:
        if not secret:
            raise ValueError("NEXTAUTH_SECRET is required to sign sessions")
        # a derived key keeps the session MAC separate from any other use of the same secret
        self._key = hmac.new(secret.encode(), b"lightfuse/web-session/v1", hashlib.sha256).digest()
        self.max_age_s = max(int(max_age_minutes), 1) * 60

    def _sign(self, body: str) -> str:
        return _b64(hmac.new(self._key, body.encode(), hashlib.sha256).digest())

    def dumps(self, session: WebSession) -> str:
        body = _b64(orjson.dumps(session.payload()))
        return f"{body}.{self._sign(body)}"

    def loads(self, token: str | None, now: float | None = None) -> WebSession | None:
        """The session in a cookie value, or None when it is missing, forged, malformed or expired."""
        if not token or token.count(".") != 1:
            return None
        body, sig = token.split(".")
        if not hmac.compare_digest(sig, self._sign(body)):
            return None
        try:
            data = orjson.loads(_unb64(body))
            csrf, issued = data["c"], int(data["i"])
        except (binascii.Error, ValueError, KeyError, TypeError, orjson.JSONDecodeError):
            return None
        now = time.time() if now is None else now
        if not isinstance(csrf, str) or issued > now + _CLOCK_SKEW_S or now - issued > self.max_age_s:
            return None
        flash = data.get("f")
        return WebSession(
            csrf=csrf,
            issued_at=issued,
            user_id=data.get("u") if isinstance(data.get("u"), str) else None,
            token=data.get("t") if isinstance(data.get("t"), str) else None,
            flash=flash if isinstance(flash, dict) else None,
        )

    def remaining_s(self, session: WebSession, now: float | None = None) -> int:
        now = time.time() if now is None else now
        return max(int(session.issued_at + self.max_age_s - now), 0)
