"""/auth/sign-in, /auth/sign-up, /auth/sign-out and /account (password change, sign out everywhere).

The POSTs that check or hash a password are ``async``: the argon2 work runs in ``WebAuth``'s own bounded pool
and is awaited, so a flood of sign-ins holds none of the threads the API routes run in. A throttled attempt
gets 429 with Retry-After, a full password pool 503 with Retry-After (see ``services/accounts/web_auth.py``).
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from lightfuse.services.accounts.login_throttle import Throttled
from lightfuse.services.accounts.web_accounts import AccountError, User
from lightfuse.web.common import (
    Form,
    WebError,
    client_address,
    csrf_form,
    get_session,
    json_response,
    optional_user,
    redirect,
    render,
    require_user,
    safe_next,
    wants_json,
    web,
)
from lightfuse.web.session import WebSession

router = APIRouter()
CsrfForm = Depends(csrf_form)
SignedIn = Depends(require_user)


def _wait_text(seconds: int) -> str:
    if seconds < 120:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    return f"{-(-seconds // 60)} minutes"


def _throttled(request: Request, exc: Throttled, template: str, **context):
    message = f"Too many failed attempts. Try again in {_wait_text(exc.retry_after_s)}."
    if wants_json(request):
        response = json_response(request, {"message": message, "error": "TooManyRequestsError"}, 429)
    else:
        response = render(request, template, status=429, error=message, **context)
    response.headers["Retry-After"] = str(exc.retry_after_s)
    return response


@router.get("/auth/sign-in")
def sign_in_page(request: Request, next: str | None = None):
    if optional_user(request) is not None:
        return redirect(request, safe_next(next))
    return render(request, "auth.html", mode="sign-in", next=safe_next(next), email="")


def password_refused(request: Request, email: str) -> str | None:
    """Why a password may not be used here (AUTH_DISABLE_USERNAME_PASSWORD, AUTH_DOMAINS_WITH_SSO_ENFORCEMENT)."""
    services = web(request)
    if not services.password_login:
        return "Sign-in with email and password is disabled on this instance. Use single sign-on."
    if services.sso_required(email):
        return (
            "Your organisation requires single sign-on for this email address. Use the sign-in button above."
        )
    return None


@router.post("/auth/sign-in")
async def sign_in(request: Request, form: Form = CsrfForm):
    email, nxt = form.text("email"), safe_next(form.get("next"))
    if refused := password_refused(request, email):
        return render(request, "auth.html", status=403, mode="sign-in", next=nxt, email=email, error=refused)
    session = get_session(request)
    try:
        signed_in = await web(request).auth.sign_in(
            email, form.get("password") or "", client_address(request), old_token=session.token
        )
    except Throttled as exc:
        return _throttled(request, exc, "auth.html", mode="sign-in", next=nxt, email=email)
    if signed_in is None:
        return render(
            request,
            "auth.html",
            status=401,
            mode="sign-in",
            next=nxt,
            email=email,
            error="Invalid email or password.",
        )
    user, token = signed_in
    session.sign_in(user.id, token)
    return redirect(request, nxt)


@router.get("/auth/sign-up")
def sign_up_page(request: Request):
    if optional_user(request) is not None:
        return redirect(request, "/")
    return render(request, "auth.html", mode="sign-up", next="/", email="")


@router.post("/auth/sign-up")
async def sign_up(request: Request, form: Form = CsrfForm):
    services = web(request)
    if services.signup_disabled:
        raise WebError(403, "Sign-up is disabled on this instance. Ask an administrator for an account.")
    email = form.text("email")
    if refused := password_refused(request, email):
        raise WebError(403, refused)
    session = get_session(request)
    try:
        user, token = await services.auth.sign_up(
            email,
            form.get("password") or "",
            form.text("name"),
            client_address(request),
            old_token=session.token,
        )
    except Throttled as exc:
        return _throttled(request, exc, "auth.html", mode="sign-up", next="/", email=email)
    except AccountError as exc:
        return render(request, "auth.html", status=400, mode="sign-up", next="/", email=email, error=str(exc))
    session.sign_in(user.id, token)
    return redirect(request, "/", flash="Welcome! Create an organisation to get started.")


@router.post("/auth/sign-out")
def sign_out(request: Request, _form: Form = CsrfForm):
    # the server-side session is revoked, so a copy of the cookie is worthless from now on
    web(request).auth.sign_out(get_session(request).token)
    # a new anonymous session: new CSRF token, no user; the old cookie value is overwritten
    request.state.web_session = WebSession.anonymous()
    return redirect(request, "/auth/sign-in")


# --- the signed-in user's account ---------------------------------------------------------------------------


def _account(request: Request, user: User, status: int = 200, **context):
    links = web(request).sso_accounts.links_of(user.id)
    return render(request, "account.html", status=status, user=user, sso_links=links, **context)


@router.get("/account")
def account_page(request: Request, user: User = SignedIn):
    return _account(request, user)


@router.post("/account/password")
async def change_password(request: Request, form: Form = CsrfForm, user: User = SignedIn):
    if not web(request).password_login:
        raise WebError(403, "Passwords are not used on this instance (AUTH_DISABLE_USERNAME_PASSWORD).")
    session = get_session(request)
    try:
        token = await web(request).auth.change_password(
            user,
            form.get("current_password") or "",
            form.get("new_password") or "",
            client_address(request),
            old_token=session.token,
        )
    except Throttled as exc:
        return _throttled(request, exc, "account.html", user=user, sso_links=[])
    except AccountError as exc:
        return _account(request, user, status=400, error=str(exc))
    # every other session of the user has ended; this browser continues on a fresh one
    session.sign_in(user.id, token)
    return redirect(request, "/account", flash="Password changed. You were signed out everywhere else.")


@router.post("/account/sign-out-everywhere")
def sign_out_everywhere(request: Request, _form: Form = CsrfForm, user: User = SignedIn):
    web(request).auth.sign_out_everywhere(user)
    request.state.web_session = WebSession.anonymous()
    return redirect(request, "/auth/sign-in", flash="You were signed out on every device.")
