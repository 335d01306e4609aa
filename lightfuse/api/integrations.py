"""Blob-storage integrations (organisation key) and ``POST /api/public/feedback`` (project key)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from lightfuse.api.common import JSONResponse, ProjectAuth, read_json
from lightfuse.api.resource_helpers import service_errors
from lightfuse.services.auth.api_keys import OrgApiAuth
from lightfuse.services.integrations.blob_storage import BlobStorageIntegrations
from lightfuse.services.integrations.feedback import FeedbackBox

router = APIRouter()
PREFIX = "/api/public/integrations/blob-storage"
BODY_LIMIT = 64 * 1024


def _blob(request: Request) -> BlobStorageIntegrations:
    state = request.app.state
    if getattr(state, "blob_integrations", None) is None:
        services = state.services
        state.blob_integrations = BlobStorageIntegrations(services.engine, services.settings.encryption_key)
    return state.blob_integrations


def _org_auth(request: Request) -> OrgApiAuth:
    return request.app.state.services.keys.authenticate_org(request.headers.get("authorization"))


@router.get(PREFIX)
def list_blob_integrations(request: Request):
    auth = _org_auth(request)
    return JSONResponse(_blob(request).list(auth))


@router.put(PREFIX)
async def upsert_blob_integration(request: Request):
    auth = await run_in_threadpool(_org_auth, request)
    body = await read_json(request, BODY_LIMIT)
    with service_errors():
        return JSONResponse(await run_in_threadpool(_blob(request).upsert, auth, body))


@router.get(PREFIX + "/{id}")
def blob_integration_status(id: str, request: Request):
    auth = _org_auth(request)
    with service_errors():
        return JSONResponse(_blob(request).status(auth, id))


@router.delete(PREFIX + "/{id}")
def delete_blob_integration(id: str, request: Request):
    auth = _org_auth(request)
    with service_errors():
        return JSONResponse(_blob(request).delete(auth, id))


@router.post("/api/public/feedback")
async def submit_feedback(request: Request, auth: ProjectAuth):
    body = await read_json(request, BODY_LIMIT)
    box = FeedbackBox(request.app.state.services.engine)
    with service_errors():
        return JSONResponse(await run_in_threadpool(box.submit, auth.project_id, auth.api_key_id, body), 201)
