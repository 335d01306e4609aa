"""The organisation-key routes (api-semantics 1.3): projects CRUD, project API keys, memberships.

Basic auth with an organisation key only (``keys.authenticate_org``): a project key gets 403, a wrong pair
401 ``{"message"}``. ``GET /api/public/projects`` stays the project-key route of ``projects.py``. Bodies and
answers follow openapi.yml; refusals are Langfuse's ``{"message", "error"}``.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from lightfuse.api.common import JSONResponse, read_json
from lightfuse.api.resource_helpers import service_errors
from lightfuse.services.accounts.org_api import OrgApi
from lightfuse.services.auth.api_keys import OrgApiAuth

router = APIRouter()
BODY_LIMIT = 64 * 1024


def _api(request: Request) -> OrgApi:
    state = request.app.state
    if getattr(state, "org_api", None) is None:
        state.org_api = OrgApi(state.services.engine, state.services.keys)
    return state.org_api


def _auth(request: Request) -> OrgApiAuth:
    return request.app.state.services.keys.authenticate_org(request.headers.get("authorization"))


async def _call(request: Request, method_name: str, *args, body: bool = False) -> JSONResponse:
    """Authenticate (before reading any body), then run the service method in the thread pool."""
    auth = await run_in_threadpool(_auth, request)
    extra = (await read_json(request, BODY_LIMIT),) if body else ()
    with service_errors():
        result = await run_in_threadpool(getattr(_api(request), method_name), auth, *args, *extra)
    return JSONResponse(result)


# --- projects -----------------------------------------------------------------------------------------------


@router.get("/api/public/organizations/projects")
async def list_org_projects(request: Request):
    return await _call(request, "list_projects")


@router.post("/api/public/projects")
async def create_project(request: Request):
    return await _call(request, "create_project", body=True)


@router.put("/api/public/projects/{projectId}")
async def update_project(projectId: str, request: Request):
    return await _call(request, "update_project", projectId, body=True)


@router.delete("/api/public/projects/{projectId}")
async def delete_project(projectId: str, request: Request):
    response = await _call(request, "delete_project", projectId)
    response.status_code = 202  # deletion is asynchronous (the purge), as the spec answers
    return response


# --- API keys -----------------------------------------------------------------------------------------------


@router.get("/api/public/organizations/apiKeys")
async def list_org_api_keys(request: Request):
    return await _call(request, "list_org_keys")


@router.get("/api/public/projects/{projectId}/apiKeys")
async def list_project_api_keys(projectId: str, request: Request):
    return await _call(request, "list_project_keys", projectId)


@router.post("/api/public/projects/{projectId}/apiKeys")
async def create_project_api_key(projectId: str, request: Request):
    return await _call(request, "create_project_key", projectId, body=True)


@router.delete("/api/public/projects/{projectId}/apiKeys/{apiKeyId}")
async def delete_project_api_key(projectId: str, apiKeyId: str, request: Request):
    return await _call(request, "delete_project_key", projectId, apiKeyId)


# --- memberships --------------------------------------------------------------------------------------------


@router.get("/api/public/organizations/memberships")
async def list_org_memberships(request: Request):
    return await _call(request, "list_org_memberships")


@router.put("/api/public/organizations/memberships")
async def upsert_org_membership(request: Request):
    return await _call(request, "upsert_org_membership", body=True)


@router.delete("/api/public/organizations/memberships")
async def delete_org_membership(request: Request):
    return await _call(request, "delete_org_membership", body=True)


@router.get("/api/public/projects/{projectId}/memberships")
async def list_project_memberships(projectId: str, request: Request):
    return await _call(request, "list_project_memberships", projectId)


@router.put("/api/public/projects/{projectId}/memberships")
async def upsert_project_membership(projectId: str, request: Request):
    return await _call(request, "upsert_project_membership", projectId, body=True)


@router.delete("/api/public/projects/{projectId}/memberships")
async def delete_project_membership(projectId: str, request: Request):
    return await _call(request, "delete_project_membership", projectId, body=True)
