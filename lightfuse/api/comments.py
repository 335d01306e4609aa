"""Comments on traces, observations, sessions and prompts (api-semantics 5.9)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from lightfuse.api.common import JSONResponse, Paging, ProjectAuth, paginated, read_json
from lightfuse.api.resource_helpers import service_errors

router = APIRouter()


def _annotations(request: Request):
    return request.app.state.services.annotations


@router.post("/api/public/comments")
async def create_comment(request: Request, auth: ProjectAuth):
    body = await read_json(request)
    with service_errors():
        result = await run_in_threadpool(_annotations(request).create_comment, auth.project_id, body)
    return JSONResponse(result)


@router.get("/api/public/comments")
def list_comments(request: Request, auth: ProjectAuth, pg: Paging):
    q = request.query_params
    page, limit = pg.page, pg.limit
    with service_errors():
        data, total = _annotations(request).list_comments(
            auth.project_id,
            object_type=q.get("objectType") or None,
            object_id=q.get("objectId") or None,
            author_user_id=q.get("authorUserId") or None,
            limit=limit,
            offset=(page - 1) * limit,
        )
    return JSONResponse(paginated(data, page, limit, total))


@router.get("/api/public/comments/{comment_id}")
def get_comment(comment_id: str, request: Request, auth: ProjectAuth):
    with service_errors():
        return JSONResponse(_annotations(request).get_comment(auth.project_id, comment_id))
