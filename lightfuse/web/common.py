"""Plumbing every page shares: the services bundle, sessions, CSRF-checked forms, rendering, JSON twins, errors.

Route functions are plain ``def`` (FastAPI runs them in its thread pool, so queries never block the event
loop); only the form reader is ``async`` because it reads the body.
"""

from __future__ import annotations

import datetime as dt
import hmac
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from fastapi import Depends, Request
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.responses import HTMLResponse, RedirectResponse, Response

from lightfuse.services.accounts.sso_accounts import SsoAccounts
from lightfuse.services.accounts.sso_oidc import SsoLogin
from lightfuse.services.accounts.web_accounts import ProjectAccess, User, WebAccounts
from lightfuse.services.accounts.web_auth import WebAuth
from lightfuse.services.auth.api_keys import IssuedKey
from lightfuse.services.tracing.dashboard import Dashboard
from lightfuse.services.tracing.web_tracing import WebTracing
from lightfuse.web import formatting
from lightfuse.web.session import COOKIE_NAME, SessionCodec, WebSession

HERE = Path(__file__).resolve().parent
MAX_FORM_BYTES = 64 * 1024
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"

# Scripts only from our own origin (no inline code, no eval): the vendored libraries and app.js. Inline style
# attributes are allowed because the waterfall and the bars are positioned with them.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


class WebError(Exception):
    """An error page (or ``{"message", "error"}`` for a JSON client)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class SignInRequired(Exception):
    pass


@dataclass
class WebServices:
    accounts: WebAccounts
    auth: WebAuth
    tracing: WebTracing
    dashboard: Dashboard
    codec: SessionCodec
    templates: Environment
    signup_disabled: bool
    secure_cookies: bool
    asset_version: str
    sso_login: SsoLogin
    sso_accounts: SsoAccounts
    # user administration (web/admin_pages.py, web/invite_pages.py); built in web.install
    invitations: Any = None
    resets: Any = None
    org_admin: Any = None
    audit: Any = None
    mailer: Any = None
    # prompt pages (web/prompt_pages.py): services.prompts.web_prompts.WebPrompts
    prompts: Any = None
    # services.tracing.prompt_metrics.PromptMetrics: the prompt page's per-version generation metrics
    prompt_metrics: Any = None
    # NEXTAUTH_URL when it was set, for absolute links in emails; else the request's own base URL
    public_url: str | None = None
    # AUTH_DISABLE_USERNAME_PASSWORD unset: the password form is shown and accepted
    password_login: bool = True
    # AUTH_DOMAINS_WITH_SSO_ENFORCEMENT: emails in these domains may not use a password
    sso_enforced_domains: frozenset[str] = frozenset()

    def sso_required(self, email: str | None) -> bool:
        domain = (email or "").rpartition("@")[2].strip().lower()
        return bool(domain) and domain in self.sso_enforced_domains


def make_templates(asset_version: str) -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(HERE / "templates")),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(formatting.FILTERS)
    env.globals["static"] = lambda path: f"/static/{path}?v={asset_version}"
    return env


def web(request: Request) -> WebServices:
    return request.app.state.web


# --- sessions and users -------------------------------------------------------------------------------------


def get_session(request: Request) -> WebSession:
    """The request's session, decoded once; an anonymous one (with a CSRF token) when there is none."""
    cached = getattr(request.state, "web_session", None)
    if cached is None:
        cached = web(request).codec.loads(request.cookies.get(COOKIE_NAME)) or WebSession.anonymous()
        request.state.web_session = cached
    return cached


def optional_user(request: Request) -> User | None:
    if hasattr(request.state, "web_user"):
        return request.state.web_user
    session = get_session(request)
    user = None
    if session.user_id:
        # read per request: a revoked session (sign-out, password change, sign-out everywhere) ends at once
        user = web(request).auth.sessions.resolve(session.token, session.user_id)
        if user is None:
            request.state.web_session = WebSession.anonymous()
    request.state.web_user = user
    return user


def client_address(request: Request) -> str | None:
    """The address throttling counts against (uvicorn resolves X-Forwarded-For from trusted proxies only)."""
    return request.client.host if request.client else None


def require_user(request: Request) -> User:
    user = optional_user(request)
    if user is None:
        raise SignInRequired()
    return user


def project_access(projectId: str, request: Request, user: User = Depends(require_user)) -> ProjectAccess:  # noqa: B008
    # NoAccess raised here becomes a 404 (see install): other people's projects do not exist for this user
    access = web(request).accounts.project_access(user, projectId)
    request.state.project_access = access
    return access


# --- forms and CSRF -----------------------------------------------------------------------------------------


class Form(dict):
    """A parsed urlencoded body; ``getlist`` for repeated fields."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        super().__init__()
        self.pairs = pairs
        for k, v in pairs:
            self.setdefault(k, v)

    def getlist(self, key: str) -> list[str]:
        return [v for k, v in self.pairs if k == key]

    def text(self, key: str) -> str:
        return (self.get(key) or "").strip()


async def csrf_form(request: Request) -> Form:
    """The POSTed form, after checking its CSRF token against the session's (every POST goes through this)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_FORM_BYTES:
        raise WebError(413, "The form is too large.")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise WebError(413, "The form is too large.")
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype not in ("application/x-www-form-urlencoded", ""):
        raise WebError(415, "Forms must be sent as application/x-www-form-urlencoded.")
    try:
        pairs = urllib.parse.parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=200)
    except (UnicodeDecodeError, ValueError):
        raise WebError(400, "The form could not be read.") from None
    form = Form(pairs)
    session = web(request).codec.loads(request.cookies.get(COOKIE_NAME))
    sent = form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER) or ""
    if session is None or not sent or not hmac.compare_digest(sent, session.csrf):
        raise WebError(
            403, "The form has expired or did not come from this site. Reload the page and try again."
        )
    request.state.web_session = session
    return form


# --- responses ----------------------------------------------------------------------------------------------


def _finish(request: Request, response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    session = getattr(request.state, "web_session", None)
    if session is not None and session.dirty:
        services = web(request)
        response.set_cookie(
            COOKIE_NAME,
            services.codec.dumps(session),
            max_age=services.codec.remaining_s(session),
            httponly=True,
            samesite="lax",
            secure=services.secure_cookies,
            path="/",
        )
    return response


def wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


def issued_key_json(key: IssuedKey) -> dict[str, Any]:
    """A freshly created key pair as the pages answer it: the only time the full secret is shown."""
    return {
        "id": key.id,
        "publicKey": key.public_key,
        "secretKey": key.secret_key,
        "displaySecretKey": key.display_secret_key,
        "createdAt": key.created_at,
    }


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def json_response(request: Request, data: Any, status: int = 200) -> Response:
    body = orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS)
    return _finish(request, Response(body, status_code=status, media_type="application/json"))


def render(request: Request, template: str, status: int = 200, **context: Any) -> Response:
    session = get_session(request)
    services = web(request)
    context.setdefault("user", getattr(request.state, "web_user", None))
    context.setdefault("access", getattr(request.state, "project_access", None))
    context.update(
        request=request,
        csrf_token=session.csrf,
        csrf_field=CSRF_FIELD,
        flash=session.pop_flash(),
        signup_disabled=services.signup_disabled,
        password_login=services.password_login,
        sso_providers=list(services.sso_login.providers.values()),
    )
    html = services.templates.get_template(template).render(**context)
    return _finish(request, HTMLResponse(html, status_code=status))


def page(request: Request, template: str, data: Any, **context: Any) -> Response:
    """A page and its JSON twin: ``Accept: application/json`` gets ``data``, a browser the rendered template."""
    if wants_json(request):
        return json_response(request, data)
    return render(request, template, data=data, **context)


def redirect(request: Request, url: str, flash: str | None = None, kind: str = "info") -> Response:
    if flash:
        get_session(request).set_flash(flash, kind)
    return _finish(request, RedirectResponse(url, status_code=303))


def public_base_url(request: Request) -> str:
    """The origin for links that leave the browser (emails, copied invitation links)."""
    return (web(request).public_url or str(request.base_url)).rstrip("/")


def safe_next(url: str | None) -> str:
    """Only same-site paths: an open redirect after sign-in would make phishing links look trustworthy."""
    if not url or not url.startswith("/") or url.startswith("//") or "\\" in url:
        return "/"
    return url


def error_response(request: Request, status: int, message: str) -> Response:
    if wants_json(request) or request.url.path.startswith("/api/"):
        return json_response(
            request, {"message": message, "error": _ERROR_NAMES.get(status, "Error")}, status
        )
    return render(request, "error.html", status=status, status_code=status, message=message)


_ERROR_NAMES = {
    400: "InvalidRequestError",
    401: "UnauthorizedError",
    403: "ForbiddenError",
    404: "NotFoundError",
    413: "PayloadTooLargeError",
    415: "UnsupportedMediaTypeError",
    429: "TooManyRequestsError",
    503: "ServiceUnavailableError",
}


# --- query parameters ---------------------------------------------------------------------------------------

RANGES = {"1h": 3600, "24h": 86400, "7d": 7 * 86400, "30d": 30 * 86400, "90d": 90 * 86400, "all": None}


def parse_local_time(value: str | None) -> int | None:
    """A ``datetime-local`` input (or any ISO time); times without a zone are UTC, as the UI shows UTC."""
    if not value:
        return None
    try:
        t = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise WebError(400, f"Invalid time {value!r}; use YYYY-MM-DDTHH:MM") from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    return int(t.timestamp() * 1000)


def time_window(
    range_key: str | None, from_: str | None, to: str | None, default: str
) -> tuple[str, int | None, int | None]:
    """(range key, from ms, to ms). Custom from/to win over a preset."""
    if from_ or to:
        return "custom", parse_local_time(from_), parse_local_time(to)
    key = range_key if range_key in RANGES else default
    seconds = RANGES[key]
    if seconds is None:
        return key, None, None
    now = int(time.time() * 1000)
    return key, now - seconds * 1000, None


def int_param(value: str | None, default: int, lo: int, hi: int, name: str) -> int:
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise WebError(400, f"{name} must be a whole number") from None
    if not lo <= number <= hi:
        raise WebError(400, f"{name} must be between {lo} and {hi}")
    return number


def query_without(request: Request, *drop: str, **overrides: Any) -> str:
    """The current query string with some parameters replaced (pagination and sort links)."""
    pairs = [(k, v) for k, v in request.query_params.multi_items() if k not in drop and k not in overrides]
    pairs += [(k, str(v)) for k, v in overrides.items() if v is not None]
    return urllib.parse.urlencode(pairs)
