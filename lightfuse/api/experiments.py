"""GET /api/public/experiments and /api/public/experiment-items (api-semantics 7.4), cursor-paged."""

from __future__ import annotations

from fastapi import APIRouter, Request

from lightfuse.api.common import JSONResponse, ProjectAuth
from lightfuse.api.resource_helpers import service_errors
from lightfuse.services.datasets.experiment_reads import ExperimentReads

router = APIRouter()


def _reads(request: Request) -> ExperimentReads:
    state = request.app.state
    if getattr(state, "experiment_reads", None) is None:
        state.experiment_reads = ExperimentReads(state.services.engine)
    return state.experiment_reads


@router.get("/api/public/experiments")
def list_experiments(request: Request, auth: ProjectAuth):
    with service_errors():
        return JSONResponse(_reads(request).list_experiments(auth.project_id, dict(request.query_params)))


@router.get("/api/public/experiment-items")
def list_experiment_items(request: Request, auth: ProjectAuth):
    with service_errors():
        return JSONResponse(_reads(request).list_items(auth.project_id, dict(request.query_params)))
