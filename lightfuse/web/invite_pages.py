"""Opening an invitation link (join, or create the invited account even with sign-up disabled) and password
reset by email (``/auth/reset-password``). The sign-in page and its callbacks are not touched here.

The token travels in the link's query string (as any emailed link) and, on the forms, in a hidden field; the
pages answer ``Referrer-Policy: same-origin`` like every page, so it never leaks to other sites.
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from lightfuse.services.accounts.invitations import InvalidInvitation
from lightfuse.services.accounts.login_throttle import Throttled
from lightfuse.services.accounts.password_reset import InvalidResetToken
from lightfuse.services.accounts.web_accounts import AccountError
from lightfuse.web.auth_pages import _throttled, password_refused
from lightfuse.web.common import (
    Form,
    client_address,
    csrf_form,
    get_session,
    optional_user,
    public_base_url,
    redirect,
    render,
    web,
)

router = APIRouter()
CsrfForm = Depends(csrf_form)
_INVALID = "This invitation link is invalid, expired, revoked or already used. Ask for a new invitation."
_INVALID_RESET = "This password reset link is invalid, expired or already used. Request a new one."


def _invitation_page(request: Request, token: str, status: int = 200, error: str | None = None):
    services = web(request)
    try:
        invitation = services.invitations.lookup(token)
    except InvalidInvitation:
        return render(request, "invitation.html", status=410, invalid=_INVALID, invitation=None, token="")
    user = optional_user(request)
    has_account = False
    if user is None:
        found, _hash = services.accounts.password_hash_for_sign_in(invitation.email)
        has_account = found is not None
    next_url = quote(f"/invitation/accept?token={token}", safe="")
    return render(
        request,
        "invitation.html",
        status=status,
        invitation=invitation,
        token=token,
        user=user,
        has_account=has_account,
        next_url=next_url,
        error=error,
        invalid=None,
    )


@router.get("/invitation/accept")
def invitation_page(request: Request, token: str = ""):
    return _invitation_page(request, token)


@router.post("/invitation/accept")
def accept_invitation(request: Request, form: Form = CsrfForm):
    user = optional_user(request)
    token = form.get("token") or ""
    if user is None:
        return _invitation_page(request, token, 401, "Sign in first.")
    try:
        invitation = web(request).invitations.accept(token, user)
    except InvalidInvitation:
        return render(request, "invitation.html", status=410, invalid=_INVALID, invitation=None, token="")
    except AccountError as exc:
        return _invitation_page(request, token, 403, str(exc))
    target = (
        f"/project/{invitation.project_id}" if invitation.project_id else f"/organization/{invitation.org_id}"
    )
    return redirect(request, target, flash=f"You joined {invitation.org_name}.")


@router.post("/invitation/sign-up")
async def invited_sign_up(request: Request, form: Form = CsrfForm):
    services = web(request)
    token = form.get("token") or ""
    session = get_session(request)
    try:
        user, session_token, invitation = await services.invitations.sign_up_and_accept(
            services.auth,
            token,
            form.get("password") or "",
            form.text("name"),
            client_address(request),
            old_token=session.token,
        )
    except InvalidInvitation:
        return render(request, "invitation.html", status=410, invalid=_INVALID, invitation=None, token="")
    except Throttled as exc:
        return _throttled(
            request,
            exc,
            "invitation.html",
            invalid="Too many sign-ups from this address; try again later.",
            invitation=None,
            token="",
        )
    except AccountError as exc:
        return await run_in_threadpool(_invitation_page, request, token, 400, str(exc))
    session.sign_in(user.id, session_token)
    target = (
        f"/project/{invitation.project_id}" if invitation.project_id else f"/organization/{invitation.org_id}"
    )
    return redirect(request, target, flash=f"Welcome! You joined {invitation.org_name}.")


# --- password reset -----------------------------------------------------------------------------------------


@router.get("/auth/reset-password")
def reset_request_page(request: Request):
    return render(request, "reset_password.html", mode="request", mail_on=web(request).mailer.configured)


@router.post("/auth/reset-password")
async def reset_request(request: Request, form: Form = CsrfForm):
    services = web(request)
    email = form.text("email")
    if refused := password_refused(request, email):  # SSO-only accounts have no password to reset
        return render(request, "reset_password.html", status=403, mode="request", mail_on=True, error=refused)
    if not services.mailer.configured:
        return render(request, "reset_password.html", status=503, mode="request", mail_on=False)
    try:
        found = await services.resets.request(email, client_address(request))
    except Throttled as exc:
        return _throttled(request, exc, "reset_password.html", mode="request", mail_on=True)
    sent_error = None
    if found is not None:
        user, token = found
        link = f"{public_base_url(request)}/auth/reset-password/confirm?token={token}"
        result = await services.mailer.send(
            user.email,
            "Reset your Lightfuse password",
            f"Someone asked to reset the password of your Lightfuse account ({user.email}).\n\n"
            f"Open this link within one hour to choose a new password (it works once):\n{link}\n\n"
            "If this was not you, ignore this email: your password stays as it is.\n",
        )
        sent_error = None if result.sent else result.error
    # the same answer whether or not the address has an account; only a failed send of a real one differs
    return render(request, "reset_password.html", mode="requested", mail_on=True, error=sent_error)


@router.get("/auth/reset-password/confirm")
def reset_confirm_page(request: Request, token: str = ""):
    try:
        web(request).resets.check(token)
    except InvalidResetToken:
        return render(request, "reset_password.html", status=410, mode="invalid", error=_INVALID_RESET)
    return render(request, "reset_password.html", mode="confirm", token=token)


@router.post("/auth/reset-password/confirm")
async def reset_confirm(request: Request, form: Form = CsrfForm):
    token = form.get("token") or ""
    if refused := password_refused(request, ""):
        return render(request, "reset_password.html", status=403, mode="invalid", error=refused)
    try:
        await web(request).resets.reset(token, form.get("password") or "")
    except InvalidResetToken:
        return render(request, "reset_password.html", status=410, mode="invalid", error=_INVALID_RESET)
    except AccountError as exc:
        return render(request, "reset_password.html", status=400, mode="confirm", token=token, error=str(exc))
    return redirect(request, "/auth/sign-in", flash="Password changed. Sign in with the new password.")
