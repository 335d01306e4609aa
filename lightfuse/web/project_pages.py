"""Project settings: rename, delete, API keys (the secret is shown once, in the answer to the create form)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from lightfuse.services.accounts.web_accounts import AccountError, ProjectAccess
from lightfuse.web.common import (
    Form,
    csrf_form,
    issued_key_json,
    json_response,
    page,
    project_access,
    redirect,
    wants_json,
    web,
)

router = APIRouter()
CsrfForm = Depends(csrf_form)
Project = Depends(project_access)


def _settings(request: Request, access: ProjectAccess, created_key=None, status: int = 200):
    keys = web(request).accounts.list_api_keys(access) if access.can("apiKeys:read") else []
    data = {
        "id": access.id,
        "name": access.project["name"],
        "organization": {"id": access.org_id, "name": access.project["org_name"]},
        "role": access.role,
        "apiKeys": keys if access.can("apiKeys:read") else None,
    }
    response = page(
        request,
        "project_settings.html",
        data,
        project=access.project,
        keys=keys,
        created_key=created_key,
        host=str(request.base_url).rstrip("/"),
    )
    response.status_code = status
    return response


@router.get("/project/{projectId}/settings")
def settings_page(request: Request, access: ProjectAccess = Project):
    return _settings(request, access)


@router.post("/project/{projectId}/settings/rename")
def rename_project(request: Request, form: Form = CsrfForm, access: ProjectAccess = Project):
    try:
        web(request).accounts.rename_project(access, form.text("name"))
    except AccountError as exc:
        return redirect(request, f"/project/{access.id}/settings", flash=str(exc), kind="error")
    return redirect(request, f"/project/{access.id}/settings", flash="Project renamed.")


@router.post("/project/{projectId}/settings/delete")
def delete_project(request: Request, form: Form = CsrfForm, access: ProjectAccess = Project):
    # typing the name guards against deleting the wrong project from a stale tab
    if form.text("confirm") != access.project["name"]:
        return redirect(
            request, f"/project/{access.id}/settings", flash="Type the project name to confirm.", kind="error"
        )
    web(request).accounts.delete_project(access)
    return redirect(request, f"/organization/{access.org_id}", flash="Project deleted.")


@router.post("/project/{projectId}/settings/api-keys")
def create_key(request: Request, form: Form = CsrfForm, access: ProjectAccess = Project):
    key = web(request).accounts.create_api_key(access, form.text("note"))
    created = issued_key_json(key)
    if wants_json(request):
        return json_response(request, created, status=201)
    # answered directly (no redirect): the secret must never travel through a cookie or a URL
    return _settings(request, access, created_key=created)


@router.post("/project/{projectId}/settings/api-keys/{keyId}/delete")
def delete_key(keyId: str, request: Request, _form: Form = CsrfForm, access: ProjectAccess = Project):
    deleted = web(request).accounts.delete_api_key(access, keyId)
    return redirect(
        request,
        f"/project/{access.id}/settings",
        flash="API key deleted." if deleted else "No such API key.",
        kind="info" if deleted else "error",
    )
