"""Prompt management pages: the folder list, one prompt with its versions and metrics, the text/chat editor
(every save is a new version), the diff of two versions, label moves and the protected-label settings.

Names travel as query parameters (``?name=``) on the action pages, and as the tail of the path on the
prompt page, because a name may contain ``/`` (folders) and any word, so no suffix after it is unambiguous.
Roles: VIEWER reads; MEMBER and up create versions and move labels (``prompts:CUD``); protected labels only
OWNER/ADMIN (``promptProtectedLabels:CUD``). API keys are not bound by protected labels (api-semantics 6).
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Request
from markupsafe import Markup, escape

from lightfuse.services.accounts.web_accounts import ProjectAccess
from lightfuse.services.prompts.prompts import PromptError
from lightfuse.services.prompts.web_prompts import WebPrompts
from lightfuse.services.tracing.prompt_metrics import empty as empty_metrics
from lightfuse.web.common import (
    Form,
    WebError,
    csrf_form,
    int_param,
    json_response,
    page,
    project_access,
    query_without,
    redirect,
    render,
    wants_json,
    web,
)

router = APIRouter()
CsrfForm = Depends(csrf_form)
Project = Depends(project_access)
_HIGHLIGHT_RE = re.compile(r"(\{\{[^{}]*\}\}|@@@langfusePrompt:.*?@@@)")


def highlight(text: Any) -> Markup:
    """Escaped text with ``{{variables}}`` and prompt references wrapped in <mark> (the CSS colours them)."""
    out = []
    for part in _HIGHLIGHT_RE.split("" if text is None else str(text)):
        if part.startswith("{{") and part.endswith("}}"):
            out.append(Markup('<mark class="var">{}</mark>').format(part))
        elif part.startswith("@@@langfusePrompt:"):
            out.append(Markup('<mark class="ref">{}</mark>').format(part))
        else:
            out.append(escape(part))
    return Markup("").join(out)


def prompt_url(project_id: str, name: str, version: int | None = None) -> str:
    url = f"/project/{project_id}/prompts/{quote(name, safe='/')}"
    return f"{url}?version={version}" if version is not None else url


def _prompts(request: Request) -> WebPrompts:
    return web(request).prompts


def _fail(exc: PromptError) -> WebError:
    return WebError(exc.status, exc.message)


def _render(request: Request, template: str, data: Any, access: ProjectAccess, **context: Any):
    return page(request, template, data, hl=highlight, prompt_url=prompt_url, pid=access.id, **context)


# --- list ---------------------------------------------------------------------------------------------------


@router.get("/project/{projectId}/prompts")
def prompt_list(request: Request, access: ProjectAccess = Project):
    q = request.query_params
    folder = (q.get("folder") or "").strip("/")
    page_no = int_param(q.get("page"), 1, 1, 100000, "page")
    limit = int_param(q.get("limit"), 50, 1, 100, "limit")
    data = _prompts(request).list_page(
        access.id,
        search=(q.get("q") or "").strip(),
        tag=(q.get("tag") or "").strip(),
        folder=folder,
        page=page_no,
        limit=limit,
    )
    crumbs = []
    parts = folder.split("/") if folder else []
    for i, part in enumerate(parts):
        crumbs.append({"label": part, "folder": "/".join(parts[: i + 1])})
    meta = data["meta"]
    prev_href = "?" + query_without(request, page=page_no - 1) if page_no > 1 else None
    next_href = "?" + query_without(request, page=page_no + 1) if page_no < meta["totalPages"] else None
    return _render(
        request, "prompts.html", data, access, q=q, crumbs=crumbs, prev_href=prev_href, next_href=next_href
    )


# --- one prompt ---------------------------------------------------------------------------------------------


@router.get("/project/{projectId}/prompts/{name:path}")
def prompt_detail(name: str, request: Request, access: ProjectAccess = Project):
    version = request.query_params.get("version")
    number = int_param(version, 0, 1, 2**31 - 1, "version") if version else None
    try:
        data = _prompts(request).detail(access.id, name, number)
    except PromptError as exc:
        raise _fail(exc) from None
    metrics = web(request).prompt_metrics.per_version(access.id, name)
    for v in data["versions"]:
        found = metrics.get(v["version"]) or empty_metrics()
        v["scores"] = found.pop("scores")
        v["metrics"] = found
    return _render(request, "prompt.html", data, access)


# --- editor -------------------------------------------------------------------------------------------------


def _editor_state(source: dict[str, Any] | None, name: str = "") -> dict[str, Any]:
    if source is None:
        return {
            "name": name,
            "type": "text",
            "text": "",
            "messages": [{"kind": "message", "role": "system", "content": ""}],
            "config": "{}",
            "labels": "",
            "tags": "",
            "commitMessage": "",
            "production": False,
            "existing": False,
        }
    messages = []
    if source["type"] == "chat":
        for m in source["prompt"]:
            if m.get("type") == "placeholder":
                messages.append({"kind": "placeholder", "role": "", "content": m["name"]})
            else:
                messages.append({"kind": "message", "role": m["role"], "content": m["content"]})
    return {
        "name": source["name"],
        "type": source["type"],
        "text": source["prompt"] if source["type"] == "text" else "",
        "messages": messages or [{"kind": "message", "role": "system", "content": ""}],
        "config": json.dumps(source["config"], indent=2, ensure_ascii=False),
        "labels": "",
        "tags": ", ".join(source["tags"]),
        "commitMessage": "",
        "production": False,
        "existing": True,
        "fromVersion": source["version"],
    }


def _editor(
    request: Request, access: ProjectAccess, state: dict[str, Any], error: str | None, status: int = 200
):
    response = render(
        request,
        "prompt_editor.html",
        status=status,
        state=state,
        error=error,
        prompt_url=prompt_url,
        pid=access.id,
    )
    return response


@router.get("/project/{projectId}/prompt-editor")
def editor_page(request: Request, access: ProjectAccess = Project):
    access.require("prompts:CUD")
    q = request.query_params
    name = q.get("name") or ""
    source = None
    if name and q.get("new") != "1":
        version = q.get("from")
        try:
            source = _prompts(request).raw_version(
                access.id, name, int_param(version, 0, 1, 2**31 - 1, "from") if version else None
            )
        except PromptError as exc:
            raise _fail(exc) from None
    return _editor(request, access, _editor_state(source, name), None)


def _split(raw: str) -> list[str]:
    return [x.strip() for x in raw.split(",") if x.strip()]


def _body_from_form(form: Form) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the create request body, the editor state to show again if it is refused)."""
    prompt_type = form.text("type") or "text"
    messages = []
    for kind, role, content in zip(
        form.getlist("msg_kind"), form.getlist("msg_role"), form.getlist("msg_content"), strict=False
    ):
        if kind == "placeholder":
            if content.strip():
                messages.append({"kind": "placeholder", "role": "", "content": content.strip()})
        elif role.strip() or content.strip():
            messages.append({"kind": "message", "role": role.strip() or "user", "content": content})
    state: dict[str, Any] = {
        "name": form.text("name"),
        "type": prompt_type,
        "text": form.get("text") or "",
        "messages": messages or [{"kind": "message", "role": "system", "content": ""}],
        "config": form.get("config") or "{}",
        "labels": form.text("labels"),
        "tags": form.text("tags"),
        "commitMessage": form.text("commit_message"),
        "production": form.get("production") == "on",
        "existing": form.get("existing") == "1",
    }
    labels = _split(state["labels"]) + (["production"] if state["production"] else [])
    body: dict[str, Any] = {
        "name": state["name"],
        "type": prompt_type,
        "labels": labels,
        "commitMessage": state["commitMessage"] or None,
    }
    if state["tags"] or not state["existing"]:
        body["tags"] = _split(state["tags"])
    if prompt_type == "chat":
        body["prompt"] = [
            {"type": "placeholder", "name": m["content"]}
            if m["kind"] == "placeholder"
            else {"role": m["role"], "content": m["content"]}
            for m in messages
        ]
    else:
        body["prompt"] = state["text"]
    try:
        config = json.loads(state["config"] or "{}")
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}"
        raise _ConfigError(f"Config is not valid JSON: {exc.msg} ({where})", state) from None
    if not isinstance(config, dict):
        raise _ConfigError('Config must be a JSON object, e.g. {"model": "gpt-4o", "temperature": 0}', state)
    body["config"] = config
    return body, state


class _ConfigError(Exception):
    def __init__(self, message: str, state: dict[str, Any]) -> None:
        super().__init__(message)
        self.state = state


@router.post("/project/{projectId}/prompt-editor")
def save_version(request: Request, form: Form = CsrfForm, access: ProjectAccess = Project):
    access.require("prompts:CUD")
    try:
        body, state = _body_from_form(form)
    except _ConfigError as exc:
        return _refused(request, access, exc.state, str(exc), 400)
    try:
        created = _prompts(request).prompts.create(
            access.id,
            body,
            created_by=access.user.id,
            may_move_protected=access.can("promptProtectedLabels:CUD"),
        )
    except PromptError as exc:
        return _refused(request, access, state, exc.message, exc.status)
    if wants_json(request):
        return json_response(request, created, status=201)
    return redirect(
        request,
        prompt_url(access.id, created["name"], created["version"]),
        flash=f"Saved version {created['version']} of {created['name']}.",
    )


def _refused(request: Request, access: ProjectAccess, state: dict[str, Any], message: str, status: int):
    if wants_json(request):
        return json_response(request, {"message": message, "error": "InvalidRequestError"}, status)
    return _editor(request, access, state, message, status)


# --- diff ---------------------------------------------------------------------------------------------------


@router.get("/project/{projectId}/prompt-diff")
def diff_page(request: Request, access: ProjectAccess = Project):
    q = request.query_params
    name = q.get("name") or ""
    if not name:
        raise WebError(400, "name is required")
    old = int_param(q.get("a"), 0, 1, 2**31 - 1, "a")
    new = int_param(q.get("b"), 0, 1, 2**31 - 1, "b")
    prompts = _prompts(request)
    try:
        if not old or not new:
            versions = [v["version"] for v in prompts.detail(access.id, name, None)["versions"]]
            new = new or versions[0]
            old = old or next((v for v in versions if v < new), new)
        data = prompts.diff(access.id, name, old, new)
        data["versions"] = [v["version"] for v in prompts.detail(access.id, name, None)["versions"]]
    except PromptError as exc:
        raise _fail(exc) from None
    return _render(request, "prompt_diff.html", data, access)


# --- labels -------------------------------------------------------------------------------------------------


@router.post("/project/{projectId}/prompt-labels")
def set_labels(request: Request, form: Form = CsrfForm, access: ProjectAccess = Project):
    access.require("prompts:CUD")
    name = form.text("name")
    version = int_param(form.text("version"), 0, 1, 2**31 - 1, "version")
    labels = [x for x in form.getlist("label") if x] + _split(form.text("new_labels"))
    try:
        updated = _prompts(request).prompts.set_labels(
            access.id, name, version, labels, may_move_protected=access.can("promptProtectedLabels:CUD")
        )
    except PromptError as exc:
        raise _fail(exc) from None
    if wants_json(request):
        return json_response(request, updated)
    return redirect(
        request, prompt_url(access.id, name, version), flash=f"Labels of version {version} saved."
    )


# --- protected labels ---------------------------------------------------------------------------------------


@router.get("/project/{projectId}/settings/prompts")
def prompt_settings(request: Request, access: ProjectAccess = Project):
    labels = _prompts(request).protected_labels(access.id)
    return _render(request, "prompt_settings.html", {"protectedLabels": labels}, access, labels=labels)


@router.post("/project/{projectId}/settings/prompts/protect")
def protect(request: Request, form: Form = CsrfForm, access: ProjectAccess = Project):
    access.require("promptProtectedLabels:CUD")
    try:
        _prompts(request).protect_label(access.id, form.text("label"))
    except PromptError as exc:
        raise _fail(exc) from None
    return redirect(request, f"/project/{access.id}/settings/prompts", flash="Label protected.")


@router.post("/project/{projectId}/settings/prompts/unprotect")
def unprotect(request: Request, form: Form = CsrfForm, access: ProjectAccess = Project):
    access.require("promptProtectedLabels:CUD")
    _prompts(request).unprotect_label(access.id, form.text("label"))
    return redirect(request, f"/project/{access.id}/settings/prompts", flash="Label no longer protected.")


def diff_link(project_id: str, name: str, a: int, b: int) -> str:
    return f"/project/{project_id}/prompt-diff?" + urlencode({"name": name, "a": a, "b": b})
