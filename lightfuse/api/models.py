"""Models (custom prices): GET/POST /api/public/models, GET/DELETE /api/public/models/{id}.

Listings merge the packaged built-in table (``isLangfuseManaged: true``, read-only) with the project's own
models; see ``services.pricing.project_models`` for ordering and price-book invalidation.
"""

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
from lightfuse.services.pricing import project_models
from lightfuse.services.pricing.models import ModelValidationError, model_to_api

router = APIRouter()
_NOT_FOUND = "No model with this id found."


@router.get("/api/public/models")
def list_models(request: Request, auth: ProjectAuth, pg: Paging):
    page, limit = pg.page, pg.limit
    models = project_models.list_models(request.app.state.services.engine, auth.project_id)
    chunk = models[(page - 1) * limit : page * limit]
    return JSONResponse(paginated([model_to_api(m) for m in chunk], page, limit, len(models)))


@router.get("/api/public/models/{model_id}")
def get_model(model_id: str, request: Request, auth: ProjectAuth):
    model = project_models.get_model(request.app.state.services.engine, auth.project_id, model_id)
    if model is None:
        raise not_found(_NOT_FOUND)
    return JSONResponse(model_to_api(model))


@router.post("/api/public/models")
async def create_model(request: Request, auth: ProjectAuth):
    services = request.app.state.services
    body = await read_json(request)
    try:
        model = await run_in_threadpool(
            project_models.create_model, services.engine, services.models, auth.project_id, body
        )
    except ModelValidationError as exc:
        raise bad_request(exc.message) from None
    return JSONResponse(model_to_api(model))


@router.delete("/api/public/models/{model_id}")
def delete_model(model_id: str, request: Request, auth: ProjectAuth):
    services = request.app.state.services
    if not project_models.delete_model(services.engine, services.models, auth.project_id, model_id):
        if project_models.find_builtin(model_id) is not None:
            raise not_found(
                f"{_NOT_FOUND} Model {model_id} is a built-in (Langfuse-managed) model and cannot be deleted; "
                "to change its prices, create a project model with the same matchPattern, which takes precedence."
            )
        raise not_found(_NOT_FOUND)
    return JSONResponse({"message": "Model successfully deleted"})
