"""SCIM 2.0 user provisioning: ``/api/public/scim/{ServiceProviderConfig,ResourceTypes,Schemas,Users[/{id}]}``.

Organisation API keys only (Basic auth): a project key gets 403, a wrong pair 401 (``{"message"}``). SCIM errors
carry both shapes: RFC 7644's ``schemas``/``status``/``detail``/``scimType`` for identity providers and
``message``/``error`` like every other public route. Bodies are ``application/scim+json`` or JSON.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from lightfuse.api.common import ERROR_NAMES, JSONResponse, read_json
from lightfuse.services.accounts import scim
from lightfuse.services.auth.api_keys import OrgApiAuth

router = APIRouter()
PREFIX = "/api/public/scim"


class ScimJSON(JSONResponse):
    media_type = "application/scim+json"


def _service(request: Request) -> scim.ScimService:
    state = request.app.state
    if getattr(state, "scim", None) is None:
        state.scim = scim.ScimService(state.services.engine)
    return state.scim


def _auth(request: Request) -> OrgApiAuth:
    return request.app.state.services.keys.authenticate_org(request.headers.get("authorization"))


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _error(exc: scim.ScimError) -> Response:
    body = {
        "schemas": [scim.ERROR_SCHEMA],
        "status": str(exc.status),
        "detail": exc.detail,
        "message": exc.detail,
        "error": ERROR_NAMES.get(exc.status, "ApiError"),
    }
    if exc.scim_type:
        body["scimType"] = exc.scim_type
    return ScimJSON(body, exc.status)


@router.get(PREFIX + "/ServiceProviderConfig")
def service_provider_config(request: Request):
    _auth(request)
    return ScimJSON(scim.service_provider_config(_base(request)))


@router.get(PREFIX + "/ResourceTypes")
def resource_types(request: Request):
    _auth(request)
    return ScimJSON(scim.resource_types(_base(request)))


@router.get(PREFIX + "/Schemas")
def schemas(request: Request):
    _auth(request)
    return ScimJSON(scim.schemas(_base(request)))


@router.get(PREFIX + "/Users")
def list_users(request: Request):
    auth = _auth(request)
    q = request.query_params
    try:
        return ScimJSON(
            _service(request).list_users(
                auth, _base(request), q.get("filter"), q.get("startIndex"), q.get("count")
            )
        )
    except scim.ScimError as exc:
        return _error(exc)


@router.post(PREFIX + "/Users")
async def create_user(request: Request):
    auth = await run_in_threadpool(_auth, request)
    body = await read_json(request, limit=64 * 1024)
    try:
        created = await run_in_threadpool(_service(request).create_user, auth, _base(request), body)
    except scim.ScimError as exc:
        return _error(exc)
    return ScimJSON(created, 201, headers={"Location": created["meta"]["location"]})


@router.get(PREFIX + "/Users/{userId}")
def get_user(userId: str, request: Request):
    auth = _auth(request)
    try:
        return ScimJSON(_service(request).get_user(auth, _base(request), userId))
    except scim.ScimError as exc:
        return _error(exc)


@router.delete(PREFIX + "/Users/{userId}")
def delete_user(userId: str, request: Request):
    auth = _auth(request)
    try:
        _service(request).delete_user(auth, userId)
    except scim.ScimError as exc:
        return _error(exc)
    return Response(status_code=204)
