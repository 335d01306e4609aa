"""Traces at Langfuse's URLs: the table, one trace (tree, timeline, observation panel), delete, deep link."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from lightfuse.services.accounts.web_accounts import ProjectAccess, User
from lightfuse.services.tracing.web_tracing import LEVELS, ORDER_FIELDS, TraceTableFilters
from lightfuse.web.common import (
    Form,
    WebError,
    csrf_form,
    int_param,
    is_htmx,
    page,
    project_access,
    query_without,
    redirect,
    render,
    require_user,
    time_window,
    wants_json,
    web,
)

router = APIRouter()
CsrfForm = Depends(csrf_form)
Project = Depends(project_access)
PAGE_SIZES = (10, 25, 50, 100)


def _split_tags(raw: str | None) -> list[str]:
    return list(dict.fromkeys(t.strip() for t in (raw or "").split(",") if t.strip()))


def _metadata_pairs(values: list[str]) -> list[tuple[str, str]]:
    pairs = []
    for raw in values:
        if not raw.strip():
            continue
        key, sep, value = raw.partition("=")
        if not sep or not key.strip():
            raise WebError(400, f"Metadata filters are written key=value, got {raw!r}")
        pairs.append((key.strip(), value.strip()))
    return pairs


def table_filters(
    request: Request, default_range: str = "all", **fixed: str
) -> tuple[TraceTableFilters, dict]:
    """The trace table's query parameters -> filters, plus the raw values to refill the form with."""
    qp = request.query_params
    range_key, from_ms, to_ms = time_window(qp.get("range"), qp.get("from"), qp.get("to"), default_range)
    order = qp.get("order") or "timestamp.desc"
    field, _, direction = order.rpartition(".")
    if field not in ORDER_FIELDS or direction not in ("asc", "desc"):
        raise WebError(400, f"Cannot sort by {order!r}")
    form: dict[str, Any] = {
        "range": range_key,
        "from": qp.get("from") or "",
        "to": qp.get("to") or "",
        "name": fixed.get("name", qp.get("name") or ""),
        "user": fixed.get("user", qp.get("user") or ""),
        "session": fixed.get("session", qp.get("session") or ""),
        "tags": qp.get("tags") or "",
        "level": qp.get("level") or "",
        "meta": [m for m in qp.getlist("meta") if m.strip()],
        "q": qp.get("q") or "",
        "order": order,
        "limit": int_param(qp.get("limit"), 50, 1, 100, "limit"),
        "page": int_param(qp.get("page"), 1, 1, 1_000_000, "page"),
    }
    if form["level"] and form["level"] not in LEVELS:
        raise WebError(400, f"Unknown level {form['level']!r}")
    filters = TraceTableFilters(
        from_ms=from_ms,
        to_ms=to_ms,
        name=form["name"] or None,
        user_id=form["user"] or None,
        session_id=form["session"] or None,
        tags=_split_tags(form["tags"]),
        level=form["level"] or None,
        metadata=_metadata_pairs(form["meta"]),
        search=form["q"] or None,
        order_field=field,
        order_desc=direction == "desc",
        page=form["page"],
        limit=form["limit"],
    )
    return filters, form


def sort_link(request: Request, form: dict, column: str) -> dict:
    """Header link for a sortable column: first click sorts descending, the next one flips."""
    field, _, direction = form["order"].rpartition(".")
    active = field == column
    new_dir = "asc" if active and direction == "desc" else "desc"
    return {
        "href": "?" + query_without(request, "page", order=f"{column}.{new_dir}"),
        "active": active,
        "dir": direction if active else None,
    }


def trace_table_context(
    request: Request, access: ProjectAccess, filters: TraceTableFilters, form: dict
) -> dict:
    table = web(request).tracing.trace_table(access.id, filters)
    meta = table["meta"]
    return {
        "table": table,
        "form": form,
        "sort": {c: sort_link(request, form, c) for c in ORDER_FIELDS},
        "prev_href": "?" + query_without(request, page=meta["page"] - 1) if meta["page"] > 1 else None,
        "next_href": "?" + query_without(request, page=meta["page"] + 1)
        if meta["page"] < meta["totalPages"]
        else None,
        "page_sizes": PAGE_SIZES,
        "levels": LEVELS,
        "base_path": request.url.path,
    }


@router.get("/project/{projectId}/traces")
def traces_page(request: Request, access: ProjectAccess = Project):
    filters, form = table_filters(request)
    ctx = trace_table_context(request, access, filters, form)
    if wants_json(request):
        return page(request, "traces.html", ctx["table"])
    if is_htmx(request) and request.headers.get("hx-target") == "trace-table":
        return render(request, "_traces_table.html", **ctx)
    return render(request, "traces.html", names=web(request).tracing.trace_names(access.id), **ctx)


@router.get("/project/{projectId}/traces/{traceId}")
def trace_page(
    traceId: str, request: Request, access: ProjectAccess = Project, observation: str | None = None
):
    trace = web(request).tracing.trace_detail(access.id, traceId)
    selected = None
    if observation:
        selected = next((o for o in trace["observations"] if o["id"] == observation), None)
        if selected is None:
            raise WebError(404, f"Observation {observation} is not part of this trace")
    if wants_json(request):
        return page(request, "trace.html", selected or trace)
    if is_htmx(request) and request.headers.get("hx-target") == "detail-panel":
        return render(request, "_observation_panel.html", trace=trace, obs=selected)
    return render(request, "trace.html", trace=trace, obs=selected)


@router.post("/project/{projectId}/traces/{traceId}/delete")
def delete_trace(traceId: str, request: Request, _form: Form = CsrfForm, access: ProjectAccess = Project):
    access.require("traces:delete")
    web(request).tracing.delete_trace(access.id, traceId)
    return redirect(request, f"/project/{access.id}/traces", flash="Trace deleted.")


@router.get("/trace/{traceId}")
def trace_deep_link(traceId: str, request: Request, user: User = Depends(require_user)):  # noqa: B008
    services = web(request)
    project_id = services.tracing.find_trace_project(services.accounts.accessible_projects(user), traceId)
    if project_id is None:
        raise WebError(404, "Trace not found.")
    return redirect(request, f"/project/{project_id}/traces/{traceId}")
