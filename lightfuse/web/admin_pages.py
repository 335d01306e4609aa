"""Organisation settings: members with per-project roles, invitations, organisation API keys, the audit log.

Invitation links and new organisation secrets are answered in the page itself (never through a redirect, a
flash cookie or a URL). An invitation email is sent after the invitation is committed, with a timeout; if it
fails, or no SMTP is configured, the page says so and shows the link to copy.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from lightfuse.services.accounts.web_accounts import AccountError, OrgAccess
from lightfuse.services.auth import rbac
from lightfuse.web.common import (
    Form,
    csrf_form,
    int_param,
    issued_key_json,
    json_response,
    page,
    public_base_url,
    redirect,
    wants_json,
    web,
)
from lightfuse.web.org_pages import OrgCtx

router = APIRouter()
CsrfForm = Depends(csrf_form)


def invitation_link(request: Request, token: str) -> str:
    return f"{public_base_url(request)}/invitation/accept?token={token}"


def render_org_settings(request: Request, access: OrgAccess, status: int = 200, **extra):
    services = web(request)
    members, projects, invitations = [], [], []
    if access.can("organizationMembers:read"):
        members, projects = services.org_admin.members_with_project_roles(access)
        invitations = services.invitations.list_pending(access)
    org_keys = services.org_admin.list_org_keys(access) if access.role in ("OWNER", "ADMIN") else None
    data = {
        "id": access.id,
        "name": access.org["name"],
        "role": access.role,
        "members": [
            {
                "userId": m["id"],
                "email": m["email"],
                "name": m["name"],
                "role": m["role"],
                "projectRoles": m["project_roles"],
            }
            for m in members
        ],
        "pendingInvitations": [
            {
                "id": i["id"],
                "email": i["email"],
                "orgRole": i["org_role"],
                "projectId": i["project_id"],
                "projectRole": i["project_role"],
                "expiresAt": i["expires_at"],
            }
            for i in invitations
        ],
    }
    if org_keys is not None:
        data["apiKeys"] = org_keys
    response = page(
        request,
        "org_settings.html",
        data,
        org=access.org,
        org_access=access,
        members=members,
        projects=projects,
        invitations=invitations,
        org_keys=org_keys,
        assignable=[r for r in rbac.ROLES if rbac.can_assign(access.role, None, r)],
        can_edit_member=lambda m: rbac.can_assign(access.role, m["role"], None),
        mail_on=services.mailer.configured,
        **extra,
    )
    response.status_code = status
    return response


@router.get("/organization/{orgId}/settings")
def org_settings(request: Request, access: OrgAccess = OrgCtx):
    return render_org_settings(request, access)


# --- invitations --------------------------------------------------------------------------------------------


def _invitation_text(inviter: str, org_name: str, project_name: str | None, link: str) -> str:
    where = f"the organisation {org_name}" + (f" (project {project_name})" if project_name else "")
    return (
        f"{inviter} invited you to {where} on Lightfuse.\n\nOpen this link to join (valid for 7 days):\n"
        f"{link}\n\nIf you did not expect this invitation, you can ignore this email.\n"
    )


@router.post("/organization/{orgId}/invitations")
async def invite(request: Request, form: Form = CsrfForm, access: OrgAccess = OrgCtx):
    services = web(request)
    try:
        invitation, token = await run_in_threadpool(
            services.invitations.create,
            access,
            form.text("email"),
            form.text("role"),
            form.text("project_id") or None,
            form.text("project_role") or None,
        )
    except AccountError as exc:
        if wants_json(request):
            return json_response(request, {"message": str(exc), "error": "InvalidRequestError"}, 400)
        return redirect(request, f"/organization/{access.id}/settings", flash=str(exc), kind="error")
    link = invitation_link(request, token)
    # after the commit: a slow or failing mail server never loses the invitation, the link stays copyable
    result = await services.mailer.send(
        invitation.email,
        f"You are invited to {invitation.org_name} on Lightfuse",
        _invitation_text(
            access.user.name or access.user.email, invitation.org_name, invitation.project_name, link
        ),
    )
    created = {
        "id": invitation.id,
        "email": invitation.email,
        "link": link,
        "emailSent": result.sent,
        "emailError": None if services.mailer.configured and result.sent else result.error,
    }
    if wants_json(request):
        return json_response(request, created, status=201)
    return await run_in_threadpool(render_org_settings, request, access, 201, created_invitation=created)


@router.post("/organization/{orgId}/invitations/{invitationId}/revoke")
def revoke_invitation(
    invitationId: str, request: Request, _form: Form = CsrfForm, access: OrgAccess = OrgCtx
):
    target = f"/organization/{access.id}/settings"
    try:
        web(request).invitations.revoke(access, invitationId)
    except AccountError as exc:
        return redirect(request, target, flash=str(exc), kind="error")
    return redirect(request, target, flash="Invitation revoked.")


# --- project roles ------------------------------------------------------------------------------------------


@router.post("/organization/{orgId}/members/{userId}/project-role")
def set_project_role(userId: str, request: Request, form: Form = CsrfForm, access: OrgAccess = OrgCtx):
    target = f"/organization/{access.id}/settings"
    try:
        web(request).org_admin.set_project_role(
            access, form.text("project_id"), userId, form.text("project_role") or None
        )
    except AccountError as exc:
        return redirect(request, target, flash=str(exc), kind="error")
    return redirect(request, target, flash="Project role changed.")


# --- organisation API keys ----------------------------------------------------------------------------------


@router.post("/organization/{orgId}/api-keys")
def create_org_key(request: Request, form: Form = CsrfForm, access: OrgAccess = OrgCtx):
    key = web(request).org_admin.create_org_key(access, form.text("note"))
    created = issued_key_json(key)
    if wants_json(request):
        return json_response(request, created, status=201)
    return render_org_settings(request, access, 201, created_key=created)


@router.post("/organization/{orgId}/api-keys/{keyId}/delete")
def delete_org_key(keyId: str, request: Request, _form: Form = CsrfForm, access: OrgAccess = OrgCtx):
    deleted = web(request).org_admin.delete_org_key(access, keyId)
    return redirect(
        request,
        f"/organization/{access.id}/settings",
        flash="API key deleted." if deleted else "No such API key.",
        kind="info" if deleted else "error",
    )


# --- audit log ----------------------------------------------------------------------------------------------


@router.get("/organization/{orgId}/audit-log")
def audit_log(request: Request, access: OrgAccess = OrgCtx):
    page_no = int_param(request.query_params.get("page"), 1, 1, 1_000_000, "page")
    size = 50
    entries, total = web(request).audit.page(access, page_no, size)
    data = {
        "data": [
            {
                "id": e["id"],
                "createdAt": e["created_at"],
                "actorType": e["actor_type"],
                "actor": e["actor_label"],
                "action": e["action"],
                "resourceType": e["resource_type"],
                "resourceId": e["resource_id"],
                "projectId": e["resource_project_id"],
                "before": e["before"],
                "after": e["after"],
            }
            for e in entries
        ],
        "meta": {"page": page_no, "limit": size, "totalItems": total, "totalPages": -(-total // size)},
    }
    return page(
        request,
        "audit_log.html",
        data,
        org=access.org,
        org_access=access,
        entries=entries,
        page_no=page_no,
        pages=max(-(-total // size), 1),
        total=total,
    )
