"""API key issuing and request authentication for the public API.

Secrets are stored only as SHA-256(secret || hex(SHA-256(SALT))) - the same keyed hash Langfuse uses, so keys
survive a move between the two. Unlike Langfuse, Basic auth checks BOTH halves of the pair: the key is found
by its public key and the secret's hash is compared in constant time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import threading
import time
import uuid
from dataclasses import dataclass

from sqlalchemy import Engine

from lightfuse.services.common.clock import now_ms
from lightfuse.store.sql import accounts

INVALID_CREDENTIALS = "Invalid credentials. Confirm that you've configured the correct host."


class AuthError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True, slots=True)
class ApiAuth:
    """Who is calling: a project key with full access, or a public key that may only write scores."""

    access_level: str  # "project" | "scores"
    project_id: str
    org_id: str
    api_key_id: str
    public_key: str


@dataclass(frozen=True, slots=True)
class OrgApiAuth:
    """An organisation-scoped key (SCIM and other organisation routes): no project."""

    org_id: str
    api_key_id: str
    public_key: str


ORG_KEY_REQUIRED = "Invalid API key. Organization-scoped API key required for this operation."
ORG_KEY_ON_PROJECT_ROUTE = "Project ID not found for API token. Are you using an organization key?"


@dataclass(frozen=True, slots=True)
class IssuedKey:
    id: str
    public_key: str
    secret_key: str
    display_secret_key: str
    created_at: int


def hash_secret(secret: str, salt: str) -> str:
    salt_hex = hashlib.sha256(salt.encode()).hexdigest()
    return hashlib.sha256(secret.encode() + salt_hex.encode()).hexdigest()


SECRET_PREFIX = "sk-lf-"
_DISPLAY_CHARS = 4


def display_secret(secret: str) -> str:
    """``sk-lf-...`` and the last few characters of the rest: at most 4, and never more than half of it.

    The prefix is public (every secret key has it); the old ``secret[:6]...secret[-4:]`` showed a secret of
    ten characters or fewer whole. Keys this service generates have 36 characters after the prefix.
    """
    body = secret[len(SECRET_PREFIX) :] if secret.startswith(SECRET_PREFIX) else secret
    shown = min(_DISPLAY_CHARS, len(body) // 2)
    return f"{SECRET_PREFIX}...{body[len(body) - shown :]}"


@dataclass(slots=True)
class _CachedKey:
    row: dict
    org_id: str
    fetched_at: float


class ApiKeyService:
    """Issues keys and authenticates requests; caches key rows briefly so auth costs no query per request."""

    CACHE_SECONDS = 30.0

    def __init__(self, engine: Engine, salt: str) -> None:
        self._engine = engine
        self._salt = salt
        self._cache: dict[str, _CachedKey] = {}
        self._last_used: dict[str, int] = {}
        self._lock = threading.Lock()

    # --- issuing --------------------------------------------------------------------------------------------

    def create_key(
        self,
        project_id: str,
        *,
        note: str | None = None,
        public_key: str | None = None,
        secret_key: str | None = None,
        conn=None,
    ) -> IssuedKey:
        public_key = public_key or f"pk-lf-{uuid.uuid4()}"
        secret_key = secret_key or f"sk-lf-{uuid.uuid4()}"
        if not public_key.startswith("pk-lf-") or not secret_key.startswith("sk-lf-"):
            raise ValueError("public keys start with 'pk-lf-' and secret keys with 'sk-lf-'")
        return self._issue(public_key, secret_key, "PROJECT", project_id, None, note, conn)

    def _issue(
        self,
        public_key: str,
        secret_key: str,
        scope: str,
        project_id: str | None,
        org_id: str | None,
        note: str | None,
        conn,
    ) -> IssuedKey:
        """Store one key pair (secret hashed) with its scope, in ``conn`` or a transaction of its own."""
        key = IssuedKey(
            id=str(uuid.uuid4()),
            public_key=public_key,
            secret_key=secret_key,
            display_secret_key=display_secret(secret_key),
            created_at=now_ms(),
        )
        values = dict(
            id=key.id,
            project_id=project_id,
            organization_id=org_id,
            scope=scope,
            public_key=public_key,
            secret_hash=hash_secret(secret_key, self._salt),
            display_secret_key=key.display_secret_key,
            note=note,
            created_at=key.created_at,
        )
        if conn is not None:
            accounts.create_api_key(conn, **values)
        else:
            with self._engine.begin() as c:
                accounts.create_api_key(c, **values)
        return key

    def create_org_key(self, org_id: str, *, note: str | None = None, conn=None) -> IssuedKey:
        """An organisation-scoped pair (``scope`` ORGANIZATION, no project): accepted only by organisation routes
        (``authenticate_org``); every project route refuses it, as ``_usable`` requires a project."""
        public_key, secret_key = f"pk-lf-{uuid.uuid4()}", f"sk-lf-{uuid.uuid4()}"
        return self._issue(public_key, secret_key, "ORGANIZATION", None, org_id, note, conn)

    def forget_key_id(self, key_id: str) -> None:
        with self._lock:
            for pk in [pk for pk, c in self._cache.items() if c.row["id"] == key_id]:
                del self._cache[pk]

    def secret_matches(self, row: dict, secret_key: str) -> bool:
        return hmac.compare_digest(row["secret_hash"], hash_secret(secret_key, self._salt))

    def forget(self, public_key: str) -> None:
        with self._lock:
            self._cache.pop(public_key, None)

    def delete_key(self, project_id: str, key_id: str) -> bool:
        with self._engine.begin() as conn:
            deleted = accounts.delete_api_key(conn, key_id, project_id)
        with self._lock:
            # the cache is keyed by public key; drop every entry of that key id
            for pk in [pk for pk, c in self._cache.items() if c.row["id"] == key_id]:
                del self._cache[pk]
        return deleted > 0

    # --- authenticating -------------------------------------------------------------------------------------

    def _lookup(self, public_key: str) -> _CachedKey | None:
        now = time.monotonic()
        cached = self._cache.get(public_key)
        if cached is not None and now - cached.fetched_at < self.CACHE_SECONDS:
            return cached
        with self._engine.connect() as conn:
            row = accounts.get_api_key_by_public_key(conn, public_key)
            org_id = None
            if row is not None and row["project_id"]:
                project = accounts.get_project(conn, row["project_id"])
                org_id = project["org_id"] if project else None
                if project is None:
                    row = None
        if row is None:
            with self._lock:
                self._cache.pop(public_key, None)
            return None
        entry = _CachedKey(row=row, org_id=org_id or row.get("organization_id") or "", fetched_at=now)
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[public_key] = entry
        return entry

    def authenticate(self, header: str | None) -> ApiAuth:
        if not header:
            raise AuthError(401, "No authorization header")
        scheme, _, credentials = header.strip().partition(" ")
        scheme = scheme.lower()
        credentials = credentials.strip()
        if scheme == "basic":
            try:
                decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError, ValueError):
                raise AuthError(401, INVALID_CREDENTIALS) from None
            parts = decoded.split(":")
            if len(parts) < 2 or not parts[0] or not parts[1]:
                raise AuthError(401, INVALID_CREDENTIALS)
            public_key, secret_key = parts[0], parts[1]
            entry = self._lookup(public_key)
            if entry is None:
                # hash anyway, so the answer's timing does not tell which public keys exist
                hash_secret(secret_key, self._salt)
                raise AuthError(401, INVALID_CREDENTIALS)
            if not self.secret_matches(entry.row, secret_key):
                raise AuthError(401, INVALID_CREDENTIALS)
            if entry.row.get("scope") == "ORGANIZATION" and not entry.row.get("project_id"):
                # a valid key of the wrong kind: Langfuse answers project routes so (api-semantics 1.3)
                raise AuthError(403, ORG_KEY_ON_PROJECT_ROUTE)
            if not self._usable(entry.row):
                raise AuthError(401, INVALID_CREDENTIALS)
            self._mark_used(entry.row["id"])
            return self._auth_for(entry, "project")
        if scheme == "bearer":
            entry = self._lookup(credentials) if credentials.startswith("pk-lf-") else None
            if entry is None or not self._usable(entry.row):
                raise AuthError(401, INVALID_CREDENTIALS)
            self._mark_used(entry.row["id"])
            return self._auth_for(entry, "scores")
        raise AuthError(401, "Invalid authorization header")

    def authenticate_org(self, header: str | None) -> OrgApiAuth:
        """Basic auth with an organisation key. A valid project key gets 403 (wrong kind of key), anything
        else that is not a valid pair 401."""
        if not header:
            raise AuthError(401, "No authorization header")
        scheme, _, credentials = header.strip().partition(" ")
        if scheme.lower() == "bearer":
            raise AuthError(401, INVALID_CREDENTIALS)
        if scheme.lower() != "basic":
            raise AuthError(401, "Invalid authorization header")
        try:
            decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise AuthError(401, INVALID_CREDENTIALS) from None
        parts = decoded.split(":")
        if len(parts) < 2 or not parts[0] or not parts[1]:
            raise AuthError(401, INVALID_CREDENTIALS)
        entry = self._lookup(parts[0])
        if entry is None:
            hash_secret(parts[1], self._salt)
            raise AuthError(401, INVALID_CREDENTIALS)
        row = entry.row
        if not self.secret_matches(row, parts[1]):
            raise AuthError(401, INVALID_CREDENTIALS)
        expires = row.get("expires_at")
        if expires is not None and expires <= now_ms():
            raise AuthError(401, INVALID_CREDENTIALS)
        if row.get("scope") != "ORGANIZATION" or not row.get("organization_id"):
            raise AuthError(403, ORG_KEY_REQUIRED)
        self._mark_used(row["id"])
        return OrgApiAuth(org_id=row["organization_id"], api_key_id=row["id"], public_key=row["public_key"])

    def _usable(self, row: dict) -> bool:
        if not row.get("project_id"):
            return False
        expires = row.get("expires_at")
        return expires is None or expires > now_ms()

    def _auth_for(self, entry: _CachedKey, level: str) -> ApiAuth:
        row = entry.row
        return ApiAuth(
            access_level=level,
            project_id=row["project_id"],
            org_id=entry.org_id,
            api_key_id=row["id"],
            public_key=row["public_key"],
        )

    def _mark_used(self, key_id: str) -> None:
        self._last_used[key_id] = now_ms()

    def flush_last_used(self) -> None:
        """Persist last-use times in one write instead of one per request."""
        with self._lock:
            pending, self._last_used = self._last_used, {}
        if pending:
            with self._engine.begin() as conn:
                accounts.touch_api_keys(conn, pending)
