"""The instance admin API, ``/api/admin/organizations[/{id}[/apiKeys[/{keyId}]]]`` (openapi-organizations.yml).

``Authorization: Bearer <ADMIN_API_KEY>`` only, compared in constant time; while ``ADMIN_API_KEY`` is unset
every call is refused (401), so the API is off by default. Failures answer ``{"message"}`` like other auth
failures; refusals of the service Langfuse's ``{"message", "error"}``.
"""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from lightfuse.api.common import JSONResponse, read_json
from lightfuse.api.resource_helpers import service_errors
from lightfuse.services.accounts.instance_admin import InstanceAdmin
from lightfuse.services.auth.api_keys import AuthError

router = APIRouter()
PREFIX = "/api/admin/organizations"
BODY_LIMIT = 64 * 1024


def _admin(request: Request) -> InstanceAdmin:
    services = request.app.state.services
    configured = services.settings.admin_api_key
    header = request.headers.get("authorization")
    if not header:
        raise AuthError(401, "No authorization header")
    scheme, _, token = header.strip().partition(" ")
    expected = configured.get_secret_value() if configured is not None else ""
    # compare even when unset (against a dummy), so timing tells nothing; an unset key never matches
    matches = hmac.compare_digest(token.strip().encode(), (expected or "\0unset").encode())
    if scheme.lower() != "bearer" or not expected or not matches:
        raise AuthError(401, "Invalid admin API key")
    state = request.app.state
    if getattr(state, "instance_admin", None) is None:
        state.instance_admin = InstanceAdmin(services.engine, services.keys)
    return state.instance_admin


async def _call(request: Request, method_name: str, *args, body: bool = False) -> JSONResponse:
    admin = _admin(request)
    extra = (await read_json(request, BODY_LIMIT),) if body else ()
    with service_errors():
        return JSONResponse(await run_in_threadpool(getattr(admin, method_name), *args, *extra))


@router.get(PREFIX)
async def list_organizations(request: Request):
    return await _call(request, "list_orgs")


@router.post(PREFIX)
async def create_organization(request: Request):
    return await _call(request, "create_org", body=True)


@router.get(PREFIX + "/{organizationId}")
async def get_organization(organizationId: str, request: Request):
    return await _call(request, "get_org", organizationId)


@router.put(PREFIX + "/{organizationId}")
async def update_organization(organizationId: str, request: Request):
    return await _call(request, "update_org", organizationId, body=True)


@router.delete(PREFIX + "/{organizationId}")
async def delete_organization(organizationId: str, request: Request):
    return await _call(request, "delete_org", organizationId)


@router.get(PREFIX + "/{organizationId}/apiKeys")
async def list_organization_api_keys(organizationId: str, request: Request):
    return await _call(request, "list_keys", organizationId)


@router.post(PREFIX + "/{organizationId}/apiKeys")
async def create_organization_api_key(organizationId: str, request: Request):
    return await _call(request, "create_key", organizationId, body=True)


@router.delete(PREFIX + "/{organizationId}/apiKeys/{apiKeyId}")
async def delete_organization_api_key(organizationId: str, apiKeyId: str, request: Request):
    return await _call(request, "delete_key", organizationId, apiKeyId)
