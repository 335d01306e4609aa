"""The landing page (organisations and their projects), organisation pages and member management."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from lightfuse.services.accounts.web_accounts import AccountError, OrgAccess, User
from lightfuse.web.common import Form, csrf_form, page, redirect, require_user, web

router = APIRouter()
CsrfForm = Depends(csrf_form)
CurrentUser = Depends(require_user)


def org_access(orgId: str, request: Request, user: User = CurrentUser) -> OrgAccess:
    return web(request).accounts.org_access(user, orgId)


OrgCtx = Depends(org_access)


def _org_json(org: dict) -> dict:
    return {"id": org["id"], "name": org["name"], "role": org.get("role")}


@router.get("/")
def home(request: Request, user: User = CurrentUser):
    orgs = web(request).accounts.list_orgs(user)
    data = {
        "organizations": [
            {
                **_org_json(o),
                "projects": [{"id": p["id"], "name": p["name"], "role": p["role"]} for p in o["projects"]],
            }
            for o in orgs
        ]
    }
    return page(request, "home.html", data, orgs=orgs)


@router.post("/organizations")
def create_org(request: Request, form: Form = CsrfForm, user: User = CurrentUser):
    try:
        org_id = web(request).accounts.create_org(user, form.text("name"))
    except AccountError as exc:
        return redirect(request, "/", flash=str(exc), kind="error")
    return redirect(request, f"/organization/{org_id}", flash="Organisation created.")


@router.get("/organization/{orgId}")
def org_page(request: Request, access: OrgAccess = OrgCtx):
    projects = web(request).accounts.list_org_projects(access)
    data = {
        **_org_json({**access.org, "role": access.role}),
        "projects": [{"id": p["id"], "name": p["name"], "role": p["role"]} for p in projects],
    }
    return page(request, "org.html", data, org=access.org, org_access=access, projects=projects)


@router.post("/organization/{orgId}/projects")
def create_project(request: Request, form: Form = CsrfForm, access: OrgAccess = OrgCtx):
    try:
        project_id = web(request).accounts.create_project(access, form.text("name"))
    except AccountError as exc:
        return redirect(request, f"/organization/{access.id}", flash=str(exc), kind="error")
    return redirect(
        request,
        f"/project/{project_id}/settings",
        flash="Project created. Create an API key to start tracing.",
    )


@router.post("/organization/{orgId}/rename")
def rename_org(request: Request, form: Form = CsrfForm, access: OrgAccess = OrgCtx):
    try:
        web(request).accounts.rename_org(access, form.text("name"))
    except AccountError as exc:
        return redirect(request, f"/organization/{access.id}/settings", flash=str(exc), kind="error")
    return redirect(request, f"/organization/{access.id}/settings", flash="Organisation renamed.")


@router.post("/organization/{orgId}/delete")
def delete_org(request: Request, _form: Form = CsrfForm, access: OrgAccess = OrgCtx):
    try:
        web(request).accounts.delete_org(access)
    except AccountError as exc:
        return redirect(request, f"/organization/{access.id}/settings", flash=str(exc), kind="error")
    return redirect(request, "/", flash="Organisation deleted.")


@router.post("/organization/{orgId}/members")
def add_member(request: Request, form: Form = CsrfForm, access: OrgAccess = OrgCtx):
    target = f"/organization/{access.id}/settings"
    try:
        web(request).accounts.add_member(access, form.text("email"), form.text("role"))
    except AccountError as exc:
        return redirect(request, target, flash=str(exc), kind="error")
    return redirect(request, target, flash="Member added.")


@router.post("/organization/{orgId}/members/{userId}/role")
def change_role(userId: str, request: Request, form: Form = CsrfForm, access: OrgAccess = OrgCtx):
    target = f"/organization/{access.id}/settings"
    try:
        web(request).accounts.set_member_role(access, userId, form.text("role"))
    except AccountError as exc:
        return redirect(request, target, flash=str(exc), kind="error")
    return redirect(request, target, flash="Role changed.")


@router.post("/organization/{orgId}/members/{userId}/remove")
def remove_member(userId: str, request: Request, _form: Form = CsrfForm, access: OrgAccess = OrgCtx):
    target = f"/organization/{access.id}/settings"
    try:
        web(request).accounts.remove_member(access, userId)
    except AccountError as exc:
        return redirect(request, target, flash=str(exc), kind="error")
    if userId == access.user.id:
        return redirect(request, "/", flash="You left the organisation.")
    return redirect(request, target, flash="Member removed.")
