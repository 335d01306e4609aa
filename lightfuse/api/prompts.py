"""Prompt management routes: /api/public/v2/prompts[...] and the legacy /api/public/prompts.

Only Basic auth with a project key reaches them; a Bearer public key gets Langfuse's prompt-specific 403.
Prompt names may contain '/' (folders); clients send it as %2F, which arrives decoded, hence the ``:path``
parameters. Errors use the typed ``{"message", "error"}`` body; the SDKs turn a 404 into their fallback.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from lightfuse.api.common import (
    ApiError,
    JSONResponse,
    Page,
    authenticate,
    bad_request,
    pagination,
    parse_time_param,
    read_json,
)
from lightfuse.services.auth.api_keys import ApiAuth, AuthError
from lightfuse.services.prompts.prompts import PromptError, PromptListQuery, PromptService

router = APIRouter()


def prompt_auth(request: Request) -> ApiAuth:
    auth = authenticate(request)
    if auth.access_level != "project":
        raise AuthError(
            403, f"Access denied - need to use basic auth with secret key to {request.method} prompts"
        )
    return auth


PromptAuth = Annotated[ApiAuth, Depends(prompt_auth)]
# prompts list 10 per page by default
PromptPaging = Annotated[Page, Depends(pagination(default_limit=10))]


def _service(request: Request) -> PromptService:
    return request.app.state.services.prompts


def _api_error(exc: PromptError) -> ApiError:
    return ApiError(exc.status, exc.message)


def _int_param(value: str | None, name: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise bad_request(f"{name} must be an integer") from None


def _bool_param(value: str | None, name: str, default: bool) -> bool:
    if value is None or value == "":
        return default
    lowered = value.lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise bad_request(f"{name} must be true or false")


def _get(request: Request, auth: ApiAuth, name: str, version: int | None, label: str | None) -> JSONResponse:
    resolve = _bool_param(request.query_params.get("resolve"), "resolve", True)
    try:
        prompt = _service(request).get(auth.project_id, name, version=version, label=label, resolve=resolve)
    except PromptError as exc:
        raise _api_error(exc) from None
    return JSONResponse(prompt)


async def _create(request: Request, auth: ApiAuth, *, legacy: bool) -> JSONResponse:
    body = await read_json(request)
    try:
        prompt = await run_in_threadpool(_service(request).create, auth.project_id, body, legacy=legacy)
    except PromptError as exc:
        raise _api_error(exc) from None
    return JSONResponse(prompt, 201)


# --- v2 -----------------------------------------------------------------------------------------------------


@router.post("/api/public/v2/prompts")
async def create_prompt(request: Request, auth: PromptAuth):
    return await _create(request, auth, legacy=False)


@router.get("/api/public/v2/prompts")
def list_prompts(request: Request, auth: PromptAuth, pg: PromptPaging):
    q = request.query_params
    page, limit = pg.page, pg.limit
    service = _service(request)
    try:
        conditions = service.parse_filter(q.get("filter"))
    except PromptError as exc:
        raise _api_error(exc) from None
    query = PromptListQuery(
        name=q.get("name") or None,
        label=q.get("label") or None,
        tag=q.get("tag") or None,
        version=_int_param(q.get("version"), "version"),
        updated_from=parse_time_param(q.get("fromUpdatedAt"), "fromUpdatedAt"),
        updated_to=parse_time_param(q.get("toUpdatedAt"), "toUpdatedAt"),
        conditions=tuple(conditions) if q.get("filter") else None,
    )
    try:
        return JSONResponse(service.list(auth.project_id, query, page, limit))
    except PromptError as exc:
        raise _api_error(exc) from None


@router.patch("/api/public/v2/prompts/{name:path}/versions/{version}")
async def update_prompt_version(name: str, version: str, request: Request, auth: PromptAuth):
    number = _int_param(version, "version")
    if number is None:  # a path segment is never empty; this tells the type checker so
        raise bad_request("version must be an integer")
    body = await read_json(request)
    try:
        prompt = await run_in_threadpool(_service(request).update_labels, auth.project_id, name, number, body)
    except PromptError as exc:
        raise _api_error(exc) from None
    return JSONResponse(prompt)


@router.get("/api/public/v2/prompts/{prompt_name:path}")
def get_prompt(prompt_name: str, request: Request, auth: PromptAuth):
    q = request.query_params
    return _get(request, auth, prompt_name, _int_param(q.get("version"), "version"), q.get("label") or None)


@router.delete("/api/public/v2/prompts/{prompt_name:path}")
def delete_prompt(prompt_name: str, request: Request, auth: PromptAuth):
    q = request.query_params
    version, label = _int_param(q.get("version"), "version"), q.get("label") or None
    try:
        _service(request).delete(auth.project_id, prompt_name, version=version, label=label)
    except PromptError as exc:
        raise _api_error(exc) from None
    return Response(status_code=204)


# --- legacy v1 ----------------------------------------------------------------------------------------------


@router.get("/api/public/prompts")
def get_prompt_v1(request: Request, auth: PromptAuth):
    q = request.query_params
    name: Any = q.get("name")
    if not name:
        raise bad_request("name is required")
    return _get(request, auth, name, _int_param(q.get("version"), "version"), None)


@router.post("/api/public/prompts")
async def create_prompt_v1(request: Request, auth: PromptAuth):
    return await _create(request, auth, legacy=True)
