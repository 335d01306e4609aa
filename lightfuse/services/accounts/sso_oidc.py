"""OpenID Connect / OAuth2 sign-in: the authorization code flow with PKCE (S256), state and nonce.

``start`` discovers the provider (``<issuer>/.well-known/openid-configuration``, cached), stores the pending
sign-in server-side (table ``sso_login_states``: state and browser binding as SHA-256, nonce, PKCE verifier,
where to go afterwards; 10 minutes) and returns the authorization URL plus a random binding token for a
short-lived cookie. ``finish`` takes the pending sign-in by its state (deleting it: a state, and so the code
that came with it, works once), checks the binding cookie, exchanges the code (Authlib's OAuth2 client over
httpx, client auth ``client_secret_basic``/``client_secret_post``/``none``), verifies the ID token (joserfc
against the provider's JWKS; iss, aud, azp, exp, iat, nonce, at_hash by Authlib's ``CodeIDToken``) and
completes the claims from the userinfo endpoint when the token lacks them. OAuth2-only providers (GitHub) give
their profile endpoint's answer instead. Every outbound call goes through ``OutboundPolicy`` (SSRF allow-list,
timeout). Failures raise ``SsoFailure`` with a message safe to show; tokens, codes and secrets are never put in
messages or logs.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
from authlib.integrations.base_client import OAuthError
from authlib.integrations.httpx_client import OAuth2Client
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, OctKey
from sqlalchemy import Engine

from lightfuse.services.accounts.sso_config import ProviderConfig
from lightfuse.services.common.outbound import OutboundPolicy, OutboundRefused
from lightfuse.store.sql import sso as store
from lightfuse.store.sql.transactions import write_transaction

log = logging.getLogger("lightfuse.sso")

T = TypeVar("T")
STATE_TTL_S = 600
# sign-ins wait on the identity provider (up to AUTH_SSO_TIMEOUT per call) in threads of their own, so a slow
# provider holds none of the request thread pool the API routes run in
_SSO_THREADS = 4
_METADATA_TTL_S = 3600
# clocks of the identity provider and this server may disagree a little
_LEEWAY_S = 60
_ASYMMETRIC = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
_MAX_RESPONSE_BYTES = 1_000_000


class SsoFailure(Exception):
    """A sign-in that cannot complete. ``message`` is for the person at the browser; ``reason`` a short code
    for logs and tests; ``status`` the HTTP status of the error page."""

    def __init__(self, status: int, message: str, reason: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.reason = reason


@dataclass(frozen=True)
class Identity:
    provider: str
    subject: str
    email: str | None
    email_verified: bool
    name: str | None
    claims: dict[str, Any] = field(repr=False)


@dataclass
class _Metadata:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    userinfo_endpoint: str | None
    jwks_uri: str | None
    algs: frozenset[str]
    fetched_at: float


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _now_ms() -> int:
    return int(time.time() * 1000)


def _truthy(value: Any) -> bool:
    # Cognito and some others send "true" as a string
    return value is True or (isinstance(value, str) and value.lower() == "true")


def verify_id_token(
    id_token: str,
    keys: KeySet | OctKey,
    *,
    issuer: str,
    client_id: str,
    nonce: str | None,
    algs: frozenset[str],
    access_token: str | None = None,
    now: int | None = None,
) -> dict:
    """The claims of a signed, current ID token meant for us; ``SsoFailure`` otherwise."""
    try:
        token = jwt.decode(id_token, keys, algorithms=sorted(algs))
    except JoseError as exc:
        raise SsoFailure(
            400, "The identity provider's ID token has no valid signature.", f"signature:{exc.error}"
        ) from None
    except ValueError:
        raise SsoFailure(400, "The identity provider's ID token could not be read.", "malformed") from None
    claims = CodeIDToken(
        token.claims,
        token.header,
        options={"iss": {"essential": True, "value": issuer}, "aud": {"essential": True, "value": client_id}},
        params={"nonce": nonce, "client_id": client_id, "access_token": access_token},
    )
    try:
        claims.validate(now=now, leeway=_LEEWAY_S)
    except JoseError as exc:
        claim = getattr(exc, "claim", None) or exc.error
        what = "has expired" if exc.error == "expired_token" else f"is not valid for this sign-in ({claim})"
        raise SsoFailure(
            400, f"The identity provider's ID token {what}.", f"claims:{exc.error}:{claim}"
        ) from None
    if nonce is not None and claims.get("nonce") != nonce:
        raise SsoFailure(
            400, "The identity provider's ID token is not valid for this sign-in (nonce).", "nonce"
        )
    return dict(claims)


class SsoLogin:
    def __init__(
        self,
        engine: Engine,
        providers: dict[str, ProviderConfig],
        policy: OutboundPolicy,
        base_url: str,
        wanted_claims: tuple[str, ...] = (),
    ) -> None:
        self._engine = engine
        # claims the role mapping reads: fetched from userinfo when the ID token lacks them
        self._wanted = wanted_claims
        self.providers = providers
        self._policy = policy
        self._base_url = base_url.rstrip("/")
        self._metadata: dict[str, _Metadata] = {}
        self._jwks: dict[str, KeySet] = {}
        self._lock = threading.Lock()
        self._next_cleanup = 0.0
        self._pool = ThreadPoolExecutor(max_workers=_SSO_THREADS, thread_name_prefix="lightfuse-sso")

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in the sign-in threads, awaited."""
        return await asyncio.wrap_future(self._pool.submit(fn, *args))

    def provider(self, provider_id: str) -> ProviderConfig:
        provider = self.providers.get(provider_id)
        if provider is None:
            raise SsoFailure(
                404, "This sign-in method is not configured on this instance.", "unknown_provider"
            )
        return provider

    def redirect_uri(self, provider: ProviderConfig) -> str:
        return f"{self._base_url}/api/auth/callback/{provider.id}"

    # --- outbound HTTP ------------------------------------------------------------------------------------

    def _get_json(self, url: str, what: str, token: str | None = None) -> Any:
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            with self._policy.client() as client:
                response = client.get(url, headers=headers)
        except OutboundRefused as exc:
            raise SsoFailure(
                502, f"The identity provider's {what} address is not allowed: {exc}.", "ssrf"
            ) from None
        except httpx.HTTPError as exc:
            log.warning("sso: %s request failed: %s", what, type(exc).__name__)
            raise SsoFailure(
                502, f"The identity provider could not be reached ({what}). Try again later.", "provider_down"
            ) from None
        if response.status_code != 200 or len(response.content) > _MAX_RESPONSE_BYTES:
            raise SsoFailure(
                502,
                f"The identity provider's {what} answered with HTTP {response.status_code}.",
                "provider_error",
            )
        try:
            return response.json()
        except ValueError:
            raise SsoFailure(
                502, f"The identity provider's {what} did not answer with JSON.", "provider_error"
            ) from None

    def _discover(self, provider: ProviderConfig) -> _Metadata:
        cached = self._metadata.get(provider.id)
        if cached and time.monotonic() - cached.fetched_at < _METADATA_TTL_S:
            return cached
        if not provider.is_oidc:
            meta = _Metadata(
                provider.id,
                provider.authorize_url or "",
                provider.token_url or "",
                provider.profile_url,
                None,
                frozenset(),
                time.monotonic(),
            )
            self._metadata[provider.id] = meta
            return meta
        doc = self._get_json(f"{provider.issuer}/.well-known/openid-configuration", "discovery document")
        issuer = doc.get("issuer") if isinstance(doc, dict) else None
        # Azure AD's multi-tenant documents name the issuer with a {tenantid} placeholder
        if not isinstance(issuer, str) or (
            issuer.rstrip("/") != provider.issuer and "{tenantid}" not in issuer
        ):
            raise SsoFailure(
                502, "The identity provider's discovery document names another issuer.", "issuer_mismatch"
            )
        try:
            algs = frozenset(doc.get("id_token_signing_alg_values_supported") or ["RS256"]) & _ASYMMETRIC
            meta = _Metadata(
                issuer,
                str(doc["authorization_endpoint"]),
                str(doc["token_endpoint"]),
                doc.get("userinfo_endpoint"),
                str(doc["jwks_uri"]),
                algs or frozenset({"RS256"}),
                time.monotonic(),
            )
        except KeyError as exc:
            raise SsoFailure(
                502,
                f"The identity provider's discovery document lacks {exc.args[0]}.",
                "discovery_incomplete",
            ) from None
        self._metadata[provider.id] = meta
        return meta

    def _keys(self, meta: _Metadata, refresh: bool = False) -> KeySet:
        keys = self._jwks.get(meta.jwks_uri or "")
        if keys is None or refresh:
            doc = self._get_json(meta.jwks_uri or "", "key set")
            try:
                keys = KeySet.import_key_set(doc)
            except (JoseError, ValueError, TypeError, KeyError):
                raise SsoFailure(502, "The identity provider's key set could not be read.", "jwks") from None
            self._jwks[meta.jwks_uri or ""] = keys
        return keys

    def _client(self, provider: ProviderConfig) -> OAuth2Client:
        return OAuth2Client(
            client_id=provider.client_id,
            client_secret=provider.client_secret if provider.auth_method != "none" else None,
            token_endpoint_auth_method=provider.auth_method,
            scope=provider.scope,
            redirect_uri=self.redirect_uri(provider),
            code_challenge_method="S256" if provider.pkce else None,
            **self._policy.client_options(),
        )

    # --- the flow -----------------------------------------------------------------------------------------

    def start(self, provider_id: str, next_path: str) -> tuple[str, str]:
        """(authorization URL, browser binding token for the cookie)."""
        provider = self.provider(provider_id)
        meta = self._discover(provider)
        state, binding = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        nonce = secrets.token_urlsafe(32) if provider.nonce and provider.is_oidc else ""
        verifier = secrets.token_urlsafe(48) if provider.pkce else ""
        extra = {"nonce": nonce} if nonce else {}
        with self._client(provider) as client:
            url, _ = client.create_authorization_url(
                meta.authorization_endpoint, state=state, code_verifier=verifier or None, **extra
            )
        now = _now_ms()
        with self._engine.begin() as conn:
            store.create_login_state(
                conn,
                state_hash=_hash(state),
                binding_hash=_hash(binding),
                provider=provider.id,
                nonce=nonce,
                code_verifier=verifier,
                next_path=next_path[:2048],
                expires_at=now + STATE_TTL_S * 1000,
            )
        self._maybe_cleanup(now)
        return url, binding

    def finish(self, provider_id: str, params: dict[str, str], binding: str | None) -> tuple[Identity, str]:
        """(the identity the provider vouches for, the path to continue to)."""
        provider = self.provider(provider_id)
        state = params.get("state") or ""
        pending = None
        if state:
            with write_transaction(self._engine) as conn:
                pending = store.take_login_state(conn, _hash(state), _now_ms())
        if pending is None or pending["provider"] != provider.id:
            raise SsoFailure(
                400,
                "This sign-in is unknown, expired or already used. Start again from the sign-in page.",
                "state",
            )
        if not binding or not hmac.compare_digest(_hash(binding), pending["binding_hash"]):
            raise SsoFailure(
                400,
                "This sign-in was started in another browser. Start again from the sign-in page.",
                "binding",
            )
        meta = self._discover(provider)
        # RFC 9207: a provider that names itself in the answer must name the issuer we sent the browser to
        # (an answer from another provider, mixed up by an attacker, is refused)
        if (
            provider.is_oidc
            and params.get("iss")
            and params["iss"] != meta.issuer
            and "{tenantid}" not in meta.issuer
        ):
            raise SsoFailure(
                400, "The answer came from another identity provider than the one asked.", "iss_param"
            )
        if params.get("error"):
            error = params["error"][:64]
            raise SsoFailure(
                403, f"The identity provider did not sign you in ({error}).", f"provider:{error}"
            )
        code = params.get("code")
        if not code:
            raise SsoFailure(400, "The identity provider's answer has no authorization code.", "no_code")
        token = self._exchange(provider, meta, code, pending["code_verifier"] or None)
        if provider.is_oidc:
            identity = self._oidc_identity(provider, meta, token, pending["nonce"] or None)
        else:
            identity = self._oauth2_identity(provider, meta, token)
        return identity, pending["next_path"]

    def _exchange(self, provider: ProviderConfig, meta: _Metadata, code: str, verifier: str | None) -> dict:
        extra = {"code_verifier": verifier} if verifier else {}
        try:
            with self._client(provider) as client:
                return dict(
                    client.fetch_token(
                        meta.token_endpoint, grant_type="authorization_code", code=code, **extra
                    )
                )
        except OutboundRefused as exc:
            raise SsoFailure(
                502, f"The identity provider's token address is not allowed: {exc}.", "ssrf"
            ) from None
        except OAuthError as exc:
            # the registered error code only: descriptions may echo what was sent
            error = str(getattr(exc, "error", "") or "error")[:64]
            raise SsoFailure(
                400,
                f"The identity provider did not accept the sign-in ({error}). Start again from "
                "the sign-in page.",
                f"token:{error}",
            ) from None
        except httpx.HTTPError as exc:
            log.warning("sso: token request to %s failed: %s", provider.id, type(exc).__name__)
            raise SsoFailure(
                502, "The identity provider could not be reached. Try again later.", "provider_down"
            ) from None
        except ValueError:
            raise SsoFailure(
                502, "The identity provider's token answer could not be read.", "token_malformed"
            ) from None
        except Exception as exc:  # noqa: BLE001 - Authlib may run on httpx2, whose errors are not httpx's
            if not type(exc).__module__.startswith("httpx"):
                raise
            log.warning("sso: token request to %s failed: %s", provider.id, type(exc).__name__)
            raise SsoFailure(
                502, "The identity provider could not be reached. Try again later.", "provider_down"
            ) from None

    def _oidc_identity(
        self, provider: ProviderConfig, meta: _Metadata, token: dict, nonce: str | None
    ) -> Identity:
        id_token = token.get("id_token")
        if not isinstance(id_token, str):
            if provider.id_token:
                raise SsoFailure(
                    502, "The identity provider sent no ID token (is 'openid' in the scope?).", "no_id_token"
                )
            # AUTH_<P>_ID_TOKEN=false: a provider that issues none; who signed in is what userinfo says for the
            # access token the provider just gave us in exchange for the (PKCE-bound) code
            return self._identity(provider, self._userinfo_only(meta, token))
        algs = provider.id_token_algs or meta.algs
        issuer = meta.issuer
        if "{tenantid}" in issuer:
            tid = _unverified_claim(id_token, "tid")
            issuer = issuer.replace("{tenantid}", tid or "-")
        if any(alg.startswith("HS") for alg in algs):
            keys: KeySet | OctKey = OctKey.import_key((provider.client_secret or "").encode())
        else:
            keys = self._keys(meta)

        def verify(keys: KeySet | OctKey) -> dict:
            return verify_id_token(
                id_token,
                keys,
                issuer=issuer,
                client_id=provider.client_id,
                nonce=nonce,
                algs=algs,
                access_token=token.get("access_token"),
            )

        try:
            claims = verify(keys)
        except SsoFailure as exc:
            if not exc.reason.startswith("signature") or isinstance(keys, OctKey):
                raise
            # the provider may have rotated its keys since they were fetched: one fresh look
            claims = verify(self._keys(meta, refresh=True))
        wanted = (provider.email_claim, "email_verified", provider.name_claim, *self._wanted)
        if any(_claim(claims, name) is None for name in wanted):
            claims = self._with_userinfo(meta, token, claims)
        if provider.allowed_domains and str(claims.get("hd", "")).lower() not in provider.allowed_domains:
            raise SsoFailure(403, "Your account's domain may not sign in here.", "domain_not_allowed")
        return self._identity(provider, claims)

    def _with_userinfo(self, meta: _Metadata, token: dict, claims: dict) -> dict:
        if not meta.userinfo_endpoint or not token.get("access_token"):
            return claims
        log.debug("sso: completing the ID token's claims from the userinfo endpoint")
        info = self._get_json(meta.userinfo_endpoint, "userinfo endpoint", token["access_token"])
        # the userinfo answer is only about the ID token's subject (OIDC Core 5.3.2)
        if not isinstance(info, dict) or info.get("sub") != claims.get("sub"):
            raise SsoFailure(
                502, "The identity provider's userinfo answer is about someone else.", "userinfo_sub"
            )
        return {**info, **claims}

    def _userinfo_only(self, meta: _Metadata, token: dict) -> dict:
        if not meta.userinfo_endpoint or not token.get("access_token"):
            raise SsoFailure(
                502, "The identity provider sent neither an ID token nor a userinfo endpoint.", "no_id_token"
            )
        info = self._get_json(meta.userinfo_endpoint, "userinfo endpoint", token["access_token"])
        if not isinstance(info, dict):
            raise SsoFailure(502, "The identity provider's userinfo answer could not be read.", "userinfo")
        return info

    def _oauth2_identity(self, provider: ProviderConfig, meta: _Metadata, token: dict) -> Identity:
        access = token.get("access_token")
        if not access:
            raise SsoFailure(502, "The identity provider sent no access token.", "no_access_token")
        profile = self._get_json(provider.profile_url or "", "profile endpoint", access)
        if not isinstance(profile, dict):
            raise SsoFailure(502, "The identity provider's profile could not be read.", "profile")
        claims = {**profile, "email_verified": False}
        if provider.emails_url:
            # GitHub: the profile's email is whatever the user made public; the emails list says which is
            # the primary address and whether it was verified
            emails = self._get_json(provider.emails_url, "emails endpoint", access)
            for entry in emails if isinstance(emails, list) else []:
                if isinstance(entry, dict) and entry.get("primary"):
                    claims["email"] = entry.get("email")
                    claims["email_verified"] = entry.get("verified") is True
        return self._identity(provider, claims)

    def _identity(self, provider: ProviderConfig, claims: dict) -> Identity:
        subject = _text(claims.get(provider.sub_claim), 255)
        if subject is None:
            raise SsoFailure(502, "The identity provider did not say who you are (no subject).", "no_subject")
        email = _text(claims.get(provider.email_claim), 320)
        return Identity(
            provider=provider.id,
            subject=subject,
            email=email.lower() if email and "@" in email else None,
            email_verified=_truthy(claims.get("email_verified")),
            name=_text(claims.get(provider.name_claim), 255),
            claims=claims,
        )

    def _maybe_cleanup(self, now: int) -> None:
        with self._lock:
            if time.monotonic() < self._next_cleanup:
                return
            self._next_cleanup = time.monotonic() + 300
        with self._engine.begin() as conn:
            store.delete_expired_login_states(conn, now)


def _text(value: Any, limit: int) -> str | None:
    """A claim as stored text: strings (and GitHub's numeric ids) only, without control characters (Postgres
    refuses NUL in text), trimmed; None when nothing is left."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        return None
    value = "".join(ch for ch in value if ch >= " " and ch != "\x7f").strip()
    return value[:limit] or None


def _claim(claims: dict, path: str) -> Any:
    """A claim by name, or by dotted path into nested objects (Keycloak's ``realm_access.roles``)."""
    if path in claims:
        return claims[path]
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _unverified_claim(id_token: str, name: str) -> str | None:
    """One claim read before verification, only to pick the issuer to verify against (Azure AD's tenant)."""
    import base64
    import json

    try:
        body = id_token.split(".")[1]
        value = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))).get(name)
    except (IndexError, ValueError, AttributeError):
        return None
    return value if isinstance(value, str) and value.replace("-", "").isalnum() else None
