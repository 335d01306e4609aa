"""Datasets, dataset items, dataset runs and run items (api-semantics 7.1-7.3), v2 and legacy paths.

Dataset and run names may contain ``/`` (folders). SDKs send them percent-encoded (``a%2Fb``), which the
server decodes before routing, so the legacy ``/api/public/datasets/...`` family is routed on the raw path:
its segments are split first and decoded one by one, and ``.../runs[/{run}]`` is recognised from the end.
"""

from __future__ import annotations

from urllib.parse import unquote

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from lightfuse.api.common import (
    ApiError,
    JSONResponse,
    Paging,
    ProjectAuth,
    page_params,
    paginated,
    parse_time_param,
    read_json,
)
from lightfuse.api.resource_helpers import public_base_url, service_errors

router = APIRouter()

# Langfuse accepts dataset-item bodies up to 4.5 MB (its body parser limit for this route)
DATASET_ITEM_BODY_LIMIT = int(4.5 * 1024 * 1024)
_LEGACY_PREFIX = "/api/public/datasets/"


def _services(request: Request):
    return request.app.state.services


def _page(request: Request) -> tuple[int, int]:
    return page_params(request.query_params.get("page"), request.query_params.get("limit"))


# --- datasets -----------------------------------------------------------------------------------------------


@router.post("/api/public/v2/datasets")
@router.post("/api/public/datasets")
async def upsert_dataset(request: Request, auth: ProjectAuth):
    body = await read_json(request)
    with service_errors():
        dataset = await run_in_threadpool(_services(request).datasets.upsert_dataset, auth.project_id, body)
    return JSONResponse(dataset)


@router.get("/api/public/v2/datasets")
def list_datasets(request: Request, auth: ProjectAuth, pg: Paging):
    page, limit = pg.page, pg.limit
    data, total = _services(request).datasets.list_datasets(auth.project_id, limit, (page - 1) * limit)
    return JSONResponse(paginated(data, page, limit, total))


@router.get("/api/public/v2/datasets/{dataset_name:path}")
def get_dataset(dataset_name: str, request: Request, auth: ProjectAuth):
    with service_errors():
        return JSONResponse(_services(request).datasets.get_dataset(auth.project_id, dataset_name))


@router.get("/api/public/datasets")
def legacy_list_datasets(request: Request, auth: ProjectAuth, pg: Paging):
    page, limit = pg.page, pg.limit
    data, total = _services(request).datasets.legacy_list(auth.project_id, limit, (page - 1) * limit)
    return JSONResponse(paginated(data, page, limit, total))


def _legacy_segments(request: Request, rest: str) -> list[str]:
    raw = request.scope.get("raw_path")
    if isinstance(raw, bytes | bytearray):
        path = bytes(raw).decode("latin-1").split("?", 1)[0]
        root = request.scope.get("root_path") or ""
        if root and path.startswith(root):
            path = path[len(root) :]
        if path.startswith(_LEGACY_PREFIX):
            return [unquote(s) for s in path[len(_LEGACY_PREFIX) :].split("/")]
    return rest.split("/")


def _legacy_target(segments: list[str]) -> tuple[str, str | None, bool]:
    """-> (dataset name, run name or None, whether the path is the runs collection)."""
    if len(segments) >= 3 and segments[-2] == "runs":
        return "/".join(segments[:-2]), segments[-1], False
    if len(segments) >= 2 and segments[-1] == "runs":
        return "/".join(segments[:-1]), None, True
    return "/".join(segments), None, False


@router.get("/api/public/datasets/{rest:path}")
def legacy_dataset_paths(rest: str, request: Request, auth: ProjectAuth):
    name, run, runs_collection = _legacy_target(_legacy_segments(request, rest))
    services = _services(request)
    with service_errors():
        if run is not None:
            return JSONResponse(services.dataset_runs.get_run(auth.project_id, name, run))
        if runs_collection:
            page, limit = _page(request)
            data, total = services.dataset_runs.list_runs(auth.project_id, name, limit, (page - 1) * limit)
            return JSONResponse(paginated(data, page, limit, total))
        return JSONResponse(services.datasets.legacy_get(auth.project_id, name, public_base_url(request)))


@router.delete("/api/public/datasets/{rest:path}")
def delete_dataset_run(rest: str, request: Request, auth: ProjectAuth):
    name, run, _collection = _legacy_target(_legacy_segments(request, rest))
    if run is None:
        raise ApiError(405, "Method not allowed", "MethodNotAllowedError")
    with service_errors():
        return JSONResponse(_services(request).dataset_runs.delete_run(auth.project_id, name, run))


# --- dataset items ------------------------------------------------------------------------------------------


@router.post("/api/public/dataset-items")
async def upsert_dataset_item(request: Request, auth: ProjectAuth):
    body = await read_json(request, DATASET_ITEM_BODY_LIMIT)
    with service_errors():
        item = await run_in_threadpool(
            _services(request).datasets.upsert_item, auth.project_id, body, public_base_url(request)
        )
    return JSONResponse(item)


@router.get("/api/public/dataset-items")
def list_dataset_items(request: Request, auth: ProjectAuth, pg: Paging):
    page, limit = pg.page, pg.limit
    q = request.query_params
    version = parse_time_param(q.get("version"), "version")
    with service_errors():
        data, total = _services(request).datasets.list_items(
            auth.project_id,
            dataset_name=q.get("datasetName") or None,
            source_trace_id=q.get("sourceTraceId") or None,
            source_observation_id=q.get("sourceObservationId") or None,
            version_ms=version,
            limit=limit,
            offset=(page - 1) * limit,
            base_url=public_base_url(request),
        )
    return JSONResponse(paginated(data, page, limit, total))


@router.get("/api/public/dataset-items/{item_id:path}")
def get_dataset_item(item_id: str, request: Request, auth: ProjectAuth):
    with service_errors():
        item = _services(request).datasets.get_item(auth.project_id, item_id, public_base_url(request))
    return JSONResponse(item)


@router.delete("/api/public/dataset-items/{item_id:path}")
def delete_dataset_item(item_id: str, request: Request, auth: ProjectAuth):
    with service_errors():
        return JSONResponse(_services(request).datasets.delete_item(auth.project_id, item_id))


# --- run items ----------------------------------------------------------------------------------------------


@router.post("/api/public/dataset-run-items")
async def create_dataset_run_item(request: Request, auth: ProjectAuth):
    body = await read_json(request)
    with service_errors():
        item = await run_in_threadpool(_services(request).dataset_runs.create_run_item, auth.project_id, body)
    return JSONResponse(item)


@router.get("/api/public/dataset-run-items")
def list_dataset_run_items(request: Request, auth: ProjectAuth, pg: Paging):
    page, limit = pg.page, pg.limit
    q = request.query_params
    dataset_id, run_name = q.get("datasetId"), q.get("runName")
    if not dataset_id or not run_name:
        raise ApiError(400, "datasetId and runName are required", "InvalidRequestError")
    with service_errors():
        data, total = _services(request).dataset_runs.list_run_items(
            auth.project_id, dataset_id, run_name, limit, (page - 1) * limit
        )
    return JSONResponse(paginated(data, page, limit, total))
