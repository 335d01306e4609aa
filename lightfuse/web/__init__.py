"""Server-rendered web UI. ``install(app, services)`` adds the pages, /static and the error pages."""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from starlette.staticfiles import StaticFiles

from lightfuse.services.accounts.audit_log import AuditLog
from lightfuse.services.accounts.invitations import Invitations
from lightfuse.services.accounts.login_throttle import LoginThrottle, SqlThrottleStore, ThrottlePolicy
from lightfuse.services.accounts.mailer import Mailer
from lightfuse.services.accounts.org_admin import OrgAdmin
from lightfuse.services.accounts.password_pool import HashingBusy, PasswordPool
from lightfuse.services.accounts.password_reset import PasswordResets
from lightfuse.services.accounts.sso_accounts import SsoAccounts
from lightfuse.services.accounts.sso_config import (
    csv,
    enforced_domains,
    load_providers,
    parse_defaults,
    parse_role_mapping,
)
from lightfuse.services.accounts.sso_oidc import SsoLogin
from lightfuse.services.accounts.web_accounts import Forbidden, NoAccess, WebAccounts
from lightfuse.services.accounts.web_auth import WebAuth
from lightfuse.services.accounts.web_sessions import WebSessions
from lightfuse.services.common.outbound import OutboundPolicy
from lightfuse.services.prompts.web_prompts import WebPrompts
from lightfuse.services.tracing.dashboard import Dashboard
from lightfuse.services.tracing.prompt_metrics import PromptMetrics
from lightfuse.services.tracing.traces import NotFoundError, QueryError
from lightfuse.services.tracing.web_tracing import WebTracing
from lightfuse.web import (
    admin_pages,
    auth_pages,
    automation_pages,
    explore_pages,
    invite_pages,
    org_pages,
    playground_pages,
    project_pages,
    prompt_pages,
    sso_pages,
    trace_pages,
)
from lightfuse.web.common import (
    HERE,
    SignInRequired,
    WebError,
    WebServices,
    error_response,
    make_templates,
    redirect,
    safe_next,
    wants_json,
)
from lightfuse.web.session import SessionCodec


def _asset_version() -> str:
    # changes whenever a static file changes, so browsers never run a stale app.js against new pages
    digest = hashlib.sha256()
    for path in sorted((HERE / "static").rglob("*")):
        if path.is_file():
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:10]


def install(app: FastAPI, services: Any) -> None:
    """Wire the UI into ``app``; ``services`` is the composition root's bundle (engine, keys, models, settings)."""
    settings = services.settings
    version = _asset_version()
    codec = SessionCodec(settings.nextauth_secret or "", settings.auth_session_max_age)
    accounts = WebAccounts(services.engine, services.keys)
    policy = ThrottlePolicy(
        account_limit=settings.auth_max_failures_per_account,
        address_limit=settings.auth_max_failures_per_address,
        base_s=settings.auth_lockout_seconds,
        max_s=max(settings.auth_lockout_max_seconds, settings.auth_lockout_seconds),
        forget_s=max(3600.0, 2 * settings.auth_lockout_max_seconds),
    )
    auth = WebAuth(
        accounts,
        WebSessions(services.engine, codec.max_age_s),
        LoginThrottle(SqlThrottleStore(services.engine), policy),
        PasswordPool(settings.auth_hash_threads, settings.auth_hash_queue),
    )
    defaults = parse_defaults(
        settings.default_org_id,
        settings.default_org_role,
        settings.default_project_id,
        settings.default_project_role,
    )
    accounts.new_user_defaults = defaults
    role_rules = parse_role_mapping(settings.sso_role_mapping, csv(settings.default_org_id))
    sso_login = SsoLogin(
        services.engine,
        load_providers(settings.sso_env),
        OutboundPolicy(
            settings.sso_whitelisted_hosts,
            settings.sso_whitelisted_ips,
            settings.sso_whitelisted_ip_segments,
            settings.auth_sso_timeout,
        ),
        settings.nextauth_url,
        wanted_claims=(settings.sso_role_claim,) if role_rules else (),
    )
    app.state.web = WebServices(
        accounts=accounts,
        auth=auth,
        tracing=WebTracing(services.engine, services.models, services.media.delete_blobs),
        dashboard=Dashboard(services.engine),
        codec=codec,
        templates=make_templates(version),
        signup_disabled=bool(settings.auth_disable_signup),
        secure_cookies=settings.nextauth_url.lower().startswith("https://"),
        asset_version=version,
        invitations=Invitations(services.engine),
        resets=PasswordResets(services.engine, auth),
        org_admin=OrgAdmin(services.engine, services.keys),
        audit=AuditLog(services.engine),
        mailer=Mailer(
            settings.smtp_connection_url.get_secret_value() if settings.smtp_connection_url else None,
            settings.email_from_address,
        ),
        public_url=settings.nextauth_url if "nextauth_url" in settings.model_fields_set else None,
        sso_login=sso_login,
        sso_accounts=SsoAccounts(services.engine, defaults, role_rules, settings.sso_role_claim),
        password_login=not settings.auth_disable_username_password,
        sso_enforced_domains=enforced_domains(settings.auth_domains_with_sso_enforcement),
        prompts=WebPrompts(services.engine, services.prompts),
        prompt_metrics=PromptMetrics(services.engine),
    )
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    for module in (
        auth_pages,
        sso_pages,
        org_pages,
        admin_pages,
        invite_pages,
        project_pages,
        playground_pages,
        automation_pages,
        prompt_pages,
        trace_pages,
        explore_pages,
    ):
        app.include_router(module.router, include_in_schema=False)

    @app.exception_handler(WebError)
    async def _web_error(request: Request, exc: WebError):
        return error_response(request, exc.status, exc.message)

    @app.exception_handler(SignInRequired)
    async def _sign_in(request: Request, _exc: SignInRequired):
        if wants_json(request):
            return error_response(request, 401, "Sign in first.")
        # after sign-in the browser comes back with a GET, so only a page address is worth returning to
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        target = safe_next(path if request.method == "GET" else "/")
        return redirect(request, f"/auth/sign-in?next={quote(target, safe='')}")

    @app.exception_handler(HashingBusy)
    async def _busy(request: Request, exc: HashingBusy):
        response = error_response(request, 503, "Too many sign-ins at once. Try again in a moment.")
        response.headers["Retry-After"] = str(exc.retry_after_s)
        return response

    @app.exception_handler(NoAccess)
    async def _no_access(request: Request, _exc: NoAccess):
        return error_response(request, 404, "Not found.")

    @app.exception_handler(NotFoundError)
    async def _not_found(request: Request, exc: NotFoundError):
        return error_response(request, 404, exc.message)

    @app.exception_handler(Forbidden)
    async def _forbidden(request: Request, exc: Forbidden):
        return error_response(request, 403, str(exc))

    @app.exception_handler(QueryError)
    async def _bad_query(request: Request, exc: QueryError):
        return error_response(request, 400, str(exc))
