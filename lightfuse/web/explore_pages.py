"""Project home (dashboard), sessions and users: tables, details and their JSON twins."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from lightfuse.services.accounts.web_accounts import ProjectAccess
from lightfuse.web.common import (
    RANGES,
    int_param,
    is_htmx,
    page,
    project_access,
    query_without,
    render,
    time_window,
    wants_json,
    web,
)
from lightfuse.web.trace_pages import table_filters, trace_table_context

router = APIRouter()
Project = Depends(project_access)


def _paging(request: Request, meta: dict) -> dict:
    return {
        "prev_href": "?" + query_without(request, page=meta["page"] - 1) if meta["page"] > 1 else None,
        "next_href": "?" + query_without(request, page=meta["page"] + 1)
        if meta["page"] < meta["totalPages"]
        else None,
    }


def _window(request: Request, default: str) -> tuple[str, int | None, int | None]:
    qp = request.query_params
    return time_window(qp.get("range"), qp.get("from"), qp.get("to"), default)


@router.get("/project/{projectId}")
def project_home(request: Request, access: ProjectAccess = Project):
    range_key, from_ms, to_ms = _window(request, "7d")
    summary = web(request).dashboard.summary(access.id, from_ms, to_ms)
    qp = request.query_params
    return page(
        request,
        "dashboard.html",
        summary,
        summary=summary,
        range_key=range_key,
        ranges=list(RANGES),
        from_value=qp.get("from") or "",
        to_value=qp.get("to") or "",
    )


@router.get("/project/{projectId}/sessions")
def sessions_page(request: Request, access: ProjectAccess = Project):
    qp = request.query_params
    range_key, from_ms, to_ms = _window(request, "all")
    p = int_param(qp.get("page"), 1, 1, 1_000_000, "page")
    limit = int_param(qp.get("limit"), 50, 1, 100, "limit")
    table = web(request).tracing.sessions_table(access.id, page=p, limit=limit, from_ms=from_ms, to_ms=to_ms)
    return page(
        request,
        "sessions.html",
        table,
        table=table,
        range_key=range_key,
        ranges=list(RANGES),
        **_paging(request, table["meta"]),
    )


@router.get("/project/{projectId}/sessions/{sessionId}")
def session_page(sessionId: str, request: Request, access: ProjectAccess = Project):
    session = web(request).tracing.session_detail(access.id, sessionId)
    return page(request, "session.html", session, session=session)


@router.get("/project/{projectId}/users")
def users_page(request: Request, access: ProjectAccess = Project):
    qp = request.query_params
    range_key, from_ms, to_ms = _window(request, "all")
    p = int_param(qp.get("page"), 1, 1, 1_000_000, "page")
    limit = int_param(qp.get("limit"), 50, 1, 100, "limit")
    table = web(request).tracing.users_table(
        access.id, page=p, limit=limit, from_ms=from_ms, to_ms=to_ms, search=qp.get("q")
    )
    return page(
        request,
        "users.html",
        table,
        table=table,
        range_key=range_key,
        ranges=list(RANGES),
        q=qp.get("q") or "",
        **_paging(request, table["meta"]),
    )


@router.get("/project/{projectId}/users/{userId}")
def user_page(userId: str, request: Request, access: ProjectAccess = Project):
    detail = web(request).tracing.user_detail(access.id, userId)
    filters, form = table_filters(request, user=userId)
    ctx = trace_table_context(request, access, filters, form)
    detail_json = {**detail, "traces": ctx["table"]}
    if wants_json(request):
        return page(request, "user.html", detail_json)
    if is_htmx(request) and request.headers.get("hx-target") == "trace-table":
        return render(request, "_traces_table.html", **ctx)
    return render(request, "user.html", detail=detail, embedded=True, **ctx)
