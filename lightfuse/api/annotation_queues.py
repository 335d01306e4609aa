"""Annotation queues, their items and user assignments (api-semantics 5.10)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from lightfuse.api.common import JSONResponse, Paging, ProjectAuth, paginated, read_json
from lightfuse.api.resource_helpers import service_errors

router = APIRouter()
_QUEUES = "/api/public/annotation-queues"


def _annotations(request: Request):
    return request.app.state.services.annotations


@router.post(_QUEUES)
async def create_queue(request: Request, auth: ProjectAuth):
    body = await read_json(request)
    with service_errors():
        return JSONResponse(
            await run_in_threadpool(_annotations(request).create_queue, auth.project_id, body)
        )


@router.get(_QUEUES)
def list_queues(request: Request, auth: ProjectAuth, pg: Paging):
    page, limit = pg.page, pg.limit
    data, total = _annotations(request).list_queues(auth.project_id, limit, (page - 1) * limit)
    return JSONResponse(paginated(data, page, limit, total))


@router.get(_QUEUES + "/{queue_id}")
def get_queue(queue_id: str, request: Request, auth: ProjectAuth):
    with service_errors():
        return JSONResponse(_annotations(request).get_queue(auth.project_id, queue_id))


@router.get(_QUEUES + "/{queue_id}/items")
def list_queue_items(queue_id: str, request: Request, auth: ProjectAuth, pg: Paging):
    page, limit = pg.page, pg.limit
    with service_errors():
        data, total = _annotations(request).list_queue_items(
            auth.project_id, queue_id, request.query_params.get("status") or None, limit, (page - 1) * limit
        )
    return JSONResponse(paginated(data, page, limit, total))


@router.post(_QUEUES + "/{queue_id}/items")
async def create_queue_item(queue_id: str, request: Request, auth: ProjectAuth):
    body = await read_json(request)
    with service_errors():
        item = await run_in_threadpool(
            _annotations(request).create_queue_item, auth.project_id, queue_id, body
        )
    return JSONResponse(item)


@router.get(_QUEUES + "/{queue_id}/items/{item_id}")
def get_queue_item(queue_id: str, item_id: str, request: Request, auth: ProjectAuth):
    with service_errors():
        return JSONResponse(_annotations(request).get_queue_item(auth.project_id, queue_id, item_id))


@router.patch(_QUEUES + "/{queue_id}/items/{item_id}")
async def update_queue_item(queue_id: str, item_id: str, request: Request, auth: ProjectAuth):
    body = await read_json(request)
    with service_errors():
        item = await run_in_threadpool(
            _annotations(request).update_queue_item, auth.project_id, queue_id, item_id, body
        )
    return JSONResponse(item)


@router.delete(_QUEUES + "/{queue_id}/items/{item_id}")
def delete_queue_item(queue_id: str, item_id: str, request: Request, auth: ProjectAuth):
    with service_errors():
        return JSONResponse(_annotations(request).delete_queue_item(auth.project_id, queue_id, item_id))


@router.post(_QUEUES + "/{queue_id}/assignments")
async def assign_user(queue_id: str, request: Request, auth: ProjectAuth):
    body = await read_json(request)
    with service_errors():
        return JSONResponse(
            await run_in_threadpool(_annotations(request).assign, auth.project_id, queue_id, body)
        )


@router.delete(_QUEUES + "/{queue_id}/assignments")
async def unassign_user(queue_id: str, request: Request, auth: ProjectAuth):
    body = await read_json(request)
    with service_errors():
        return JSONResponse(
            await run_in_threadpool(_annotations(request).unassign, auth.project_id, queue_id, body)
        )
