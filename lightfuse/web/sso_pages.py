"""Single sign-on routes, at Langfuse's addresses so an identity provider set up for Langfuse needs no change.

* ``GET /api/auth/signin/<provider>?next=`` (and Langfuse's shareable ``/auth/sso-initiate?provider=``):
  stores the pending sign-in, sets the browser-binding cookie and redirects to the identity provider. A GET
  link, not a form: the page's CSP (``form-action 'self'``) would stop a form's redirect to another host, and
  starting a sign-in changes nothing until the provider answers.
* ``GET /api/auth/callback/<provider>``: the provider's answer. On success a fresh server-side session starts
  (the browser's previous one is revoked) and the browser goes on to ``next``. Every failure is an error page
  saying what went wrong, with a way back to the sign-in page, and creates nothing.

The routes are ``async`` and do their work (database, calls to the provider) in ``SsoLogin``'s own threads,
so a slow identity provider holds none of the request thread pool. Attempts are throttled by ``login_throttle`` per client address (start and callback) and per account (the
email the provider names); refused callbacks count as failures, an unreachable provider does not (it is not
the visitor's doing). The binding cookie is ``HttpOnly``, ``SameSite=Lax`` (sent on the provider's top-level
redirect back), scoped to the callback path and lives as long as the pending sign-in.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request

from lightfuse.services.accounts.login_throttle import Throttled, ThrottleKey
from lightfuse.services.accounts.sso_oidc import STATE_TTL_S, SsoFailure
from lightfuse.web.common import (
    client_address,
    get_session,
    json_response,
    redirect,
    render,
    safe_next,
    wants_json,
    web,
)

router = APIRouter()
log = logging.getLogger("lightfuse.sso")

BINDING_COOKIE = "lightfuse_sso_binding"
_CALLBACK_PATH = "/api/auth/callback/"


def _failure(request: Request, status: int, message: str, retry_after: int | None = None):
    if wants_json(request):
        names = {
            400: "InvalidRequestError",
            403: "ForbiddenError",
            404: "NotFoundError",
            429: "TooManyRequestsError",
            502: "BadGatewayError",
        }
        response = json_response(request, {"message": message, "error": names.get(status, "Error")}, status)
    else:
        response = render(request, "sso_error.html", status=status, status_code=status, message=message)
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    response.delete_cookie(BINDING_COOKIE, path=_CALLBACK_PATH)
    return response


def _throttled(request: Request, exc: Throttled):
    return _failure(request, 429, "Too many failed sign-in attempts. Try again later.", exc.retry_after_s)


def _start(request: Request, provider: str, next_path: str | None):
    services = web(request)
    throttle = services.auth.throttle
    try:
        throttle.check([throttle.address(client_address(request))])
        # a control character (NUL above all: Postgres refuses it in text) makes the address worthless
        next_path = next_path if next_path and next_path.isprintable() else None
        url, binding = services.sso_login.start(provider, safe_next(next_path))
    except Throttled as exc:
        return _throttled(request, exc)
    except SsoFailure as exc:
        log.warning("sso: sign-in with %r could not start: %s", provider[:64], exc.reason)
        return _failure(request, exc.status, exc.message)
    response = redirect(request, url)
    response.set_cookie(
        BINDING_COOKIE,
        binding,
        max_age=STATE_TTL_S,
        path=_CALLBACK_PATH,
        httponly=True,
        samesite="lax",
        secure=services.secure_cookies,
    )
    return response


@router.get("/api/auth/signin/{provider}")
async def sso_sign_in(request: Request, provider: str, next: str | None = None):
    return await web(request).sso_login.run(_start, request, provider, next)


@router.get("/auth/sso-initiate")
async def sso_initiate(request: Request, provider: str = "", next: str | None = None):
    return await web(request).sso_login.run(_start, request, provider, next)


@router.get("/api/auth/callback/{provider}")
async def sso_callback(request: Request, provider: str):
    return await web(request).sso_login.run(_callback, request, provider)


def _callback(request: Request, provider: str):
    services = web(request)
    throttle = services.auth.throttle
    keys: list[ThrottleKey] = [throttle.address(client_address(request))]
    # only the parameters of the protocol, each bounded: the rest of the query is none of our business
    params = {
        k: request.query_params.get(k, "")[:4096]
        for k in ("code", "state", "error", "iss")
        if k in request.query_params
    }
    try:
        throttle.check(keys)
        identity, next_path = services.sso_login.finish(provider, params, request.cookies.get(BINDING_COOKIE))
        if identity.email:
            keys.append(throttle.account(identity.email))
            throttle.check(keys[1:])
        user = services.sso_accounts.sign_in(identity, services.sso_login.provider(provider))
    except Throttled as exc:
        return _throttled(request, exc)
    except SsoFailure as exc:
        log.warning("sso: sign-in with %r refused: %s", provider[:64], exc.reason)
        if exc.status < 500:
            throttle.failed(keys)
        return _failure(request, exc.status, exc.message)
    if len(keys) > 1:
        throttle.succeeded(keys[1])
    session = get_session(request)
    # a new server-side session; the one this browser had (if any) is revoked: no session fixation
    token = services.auth.sessions.start(user.id, session.token)
    session.sign_in(user.id, token)
    response = redirect(request, safe_next(next_path))
    response.delete_cookie(BINDING_COOKIE, path=_CALLBACK_PATH)
    return response
