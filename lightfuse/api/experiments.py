"""GET /api/public/experiments and /api/public/experiment-items (api-semantics 7.4), cursor paged."""

from __future__ import annotations

from fastapi import APIRouter, Request

from lightfuse.api.common import JSONResponse, ProjectAuth
from lightfuse.api.resource_helpers import service_errors

router = APIRouter()


@router.get("/api/public/experiments")
def list_experiments(request: Request, auth: ProjectAuth):
    with service_errors():
        body = request.app.state.services.experiments.list_experiments(auth.project_id, request.query_params)
    return JSONResponse(body)


@router.get("/api/public/experiment-items")
def list_experiment_items(request: Request, auth: ProjectAuth):
    with service_errors():
        body = request.app.state.services.experiments.list_items(auth.project_id, request.query_params)
    return JSONResponse(body)
