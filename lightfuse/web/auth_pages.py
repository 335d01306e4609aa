"""/auth/sign-in, /auth/sign-up and /auth/sign-out (email + password)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from lightfuse.services.web_accounts import AccountError
from lightfuse.web.common import (
    Form,
    WebError,
    csrf_form,
    get_session,
    optional_user,
    redirect,
    render,
    safe_next,
    web,
)
from lightfuse.web.session import WebSession

router = APIRouter()
CsrfForm = Depends(csrf_form)


@router.get("/auth/sign-in")
def sign_in_page(request: Request, next: str | None = None):
    if optional_user(request) is not None:
        return redirect(request, safe_next(next))
    return render(request, "auth.html", mode="sign-in", next=safe_next(next), email="")


@router.post("/auth/sign-in")
def sign_in(request: Request, form: Form = CsrfForm):
    email, nxt = form.text("email"), safe_next(form.get("next"))
    user = web(request).accounts.sign_in(email, form.get("password") or "")
    if user is None:
        return render(
            request, "auth.html", status=401, mode="sign-in", next=nxt, email=email,
            error="Invalid email or password.",
        )
    get_session(request).sign_in(user.id, user.credential_stamp)
    return redirect(request, nxt)


@router.get("/auth/sign-up")
def sign_up_page(request: Request):
    if optional_user(request) is not None:
        return redirect(request, "/")
    return render(request, "auth.html", mode="sign-up", next="/", email="")


@router.post("/auth/sign-up")
def sign_up(request: Request, form: Form = CsrfForm):
    services = web(request)
    if services.signup_disabled:
        raise WebError(403, "Sign-up is disabled on this instance. Ask an administrator for an account.")
    email = form.text("email")
    try:
        user = services.accounts.sign_up(email, form.get("password") or "", form.text("name"))
    except AccountError as exc:
        return render(request, "auth.html", status=400, mode="sign-up", next="/", email=email, error=str(exc))
    get_session(request).sign_in(user.id, user.credential_stamp)
    return redirect(request, "/", flash="Welcome! Create an organisation to get started.")


@router.post("/auth/sign-out")
def sign_out(request: Request, _form: Form = CsrfForm):
    # a new anonymous session: new CSRF token, no user; the old cookie value is overwritten
    request.state.web_session = WebSession.anonymous()
    return redirect(request, "/auth/sign-in")
