"""Score configs: POST, GET (list and one) and PATCH /api/public/score-configs. There is no delete: configs are
archived instead, because existing scores keep referring to them."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from lightfuse.api.common import (
    JSONResponse,
    Paging,
    ProjectAuth,
    bad_request,
    not_found,
    paginated,
    read_json,
)
from lightfuse.services.tracing import scores as svc

router = APIRouter()
_NOT_FOUND = "Score config not found within authorized project"


@router.post("/api/public/score-configs")
async def create_score_config(request: Request, auth: ProjectAuth):
    body = await read_json(request)
    try:
        config = await run_in_threadpool(
            svc.create_config, request.app.state.services.engine, auth.project_id, body
        )
    except svc.ScoreRequestError as exc:
        raise bad_request(exc.message) from None
    return JSONResponse(config)


@router.get("/api/public/score-configs")
def list_score_configs(request: Request, auth: ProjectAuth, pg: Paging):
    page, limit = pg.page, pg.limit
    data, total = svc.list_configs(
        request.app.state.services.engine, auth.project_id, limit, (page - 1) * limit
    )
    return JSONResponse(paginated(data, page, limit, total))


@router.get("/api/public/score-configs/{config_id}")
def get_score_config(config_id: str, request: Request, auth: ProjectAuth):
    config = svc.get_config(request.app.state.services.engine, auth.project_id, config_id)
    if config is None:
        raise not_found(_NOT_FOUND)
    return JSONResponse(config)


@router.patch("/api/public/score-configs/{config_id}")
async def update_score_config(config_id: str, request: Request, auth: ProjectAuth):
    body = await read_json(request)
    try:
        config = await run_in_threadpool(
            svc.update_config, request.app.state.services.engine, auth.project_id, config_id, body
        )
    except svc.ScoreRequestError as exc:
        raise bad_request(exc.message) from None
    if config is None:
        raise not_found(_NOT_FOUND)
    return JSONResponse(config)
