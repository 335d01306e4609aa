"""LLM connections settings and the playground.

- ``/project/{id}/settings/llm-connections``: list (llmApiKeys:read), add/update, delete and test
  (llmApiKeys:create/delete; OWNER and ADMIN). Keys are shown masked; the form never echoes a secret back.
- ``/project/{id}/playground``: the page (project:read; running needs playground:execute, MEMBER and up).
  ``POST .../playground/run`` takes JSON and answers Server-Sent Events proxied from the provider's stream;
  ``GET .../playground/prompt`` loads a prompt version, ``POST .../playground/save`` saves a new one
  (prompts:CUD). JSON routes check the CSRF token from the ``X-CSRF-Token`` header.
"""

from __future__ import annotations

import hmac
from typing import Any

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from lightfuse.services.accounts.web_accounts import ProjectAccess
from lightfuse.services.common.resources import RequestError
from lightfuse.services.llm.connections import CALLABLE_ADAPTERS, models_of
from lightfuse.services.llm.playground import prompt_body
from lightfuse.services.prompts.content import PromptError, PromptNotFound
from lightfuse.web.common import (
    CSRF_HEADER,
    SECURITY_HEADERS,
    Form,
    WebError,
    csrf_form,
    json_response,
    page,
    project_access,
    redirect,
    web,
)
from lightfuse.web.session import COOKIE_NAME

router = APIRouter()
CsrfForm = Depends(csrf_form)
Project = Depends(project_access)
MAX_JSON_BYTES = 1024 * 1024
ADAPTER_LABELS = {
    "openai": "OpenAI (or any OpenAI-compatible base URL, e.g. LiteLLM)",
    "azure": "Azure OpenAI",
    "anthropic": "Anthropic",
    "google-ai-studio": "Google AI Studio",
}


def _services(request: Request) -> Any:
    return request.app.state.services


def _settings_url(access: ProjectAccess) -> str:
    return f"/project/{access.id}/settings/llm-connections"


@router.get("/project/{projectId}/settings/llm-connections")
def connections_page(request: Request, access: ProjectAccess = Project):
    access.require("llmApiKeys:read")
    data, _total = _services(request).llm_connections.page(access.id, 1000, 0)
    return page(
        request,
        "llm_connections.html",
        {"data": data},
        project=access.project,
        connections=data,
        adapters=[(a, ADAPTER_LABELS[a]) for a in CALLABLE_ADAPTERS],
    )


def _headers_from_form(text: str) -> dict[str, str] | None:
    headers = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise RequestError(400, f"extra header line {name.strip()[:40]!r} needs the form 'Name: value'")
        headers[name.strip()] = value.strip()
    return headers or None


@router.post("/project/{projectId}/settings/llm-connections")
def save_connection(request: Request, form: Form = CsrfForm, access: ProjectAccess = Project):
    access.require("llmApiKeys:create")
    adapter = form.text("adapter")
    try:
        if adapter not in CALLABLE_ADAPTERS:
            raise RequestError(400, f"adapter must be one of {', '.join(CALLABLE_ADAPTERS)}")
        body = {
            "provider": form.text("provider"),
            "adapter": adapter,
            "secretKey": form.text("secretKey"),
            "baseURL": form.text("baseURL") or None,
            "customModels": [m.strip() for m in form.text("customModels").split(",") if m.strip()],
            "withDefaultModels": form.get("withDefaultModels") == "on",
            "extraHeaders": _headers_from_form(form.get("extraHeaders") or ""),
        }
        _services(request).llm_connections.upsert(access.id, body)
    except RequestError as exc:
        return redirect(request, _settings_url(access), flash=exc.message, kind="error")
    return redirect(request, _settings_url(access), flash=f"LLM connection {body['provider']} saved.")


@router.post("/project/{projectId}/settings/llm-connections/{connectionId}/delete")
def delete_connection(
    connectionId: str, request: Request, _f: Form = CsrfForm, access: ProjectAccess = Project
):
    access.require("llmApiKeys:delete")
    deleted = _services(request).llm_connections.delete(access.id, connectionId)
    return redirect(
        request,
        _settings_url(access),
        flash="LLM connection deleted." if deleted else "No such LLM connection.",
        kind="info" if deleted else "error",
    )


@router.post("/project/{projectId}/settings/llm-connections/{connectionId}/test")
async def test_connection(
    connectionId: str, request: Request, _f: Form = CsrfForm, access: ProjectAccess = Project
):
    access.require("llmApiKeys:update")
    try:
        reply = await _services(request).playground.test_connection(access.id, connectionId)
    except RequestError as exc:
        return redirect(
            request, _settings_url(access), flash=f"Connection test failed: {exc.message}", kind="error"
        )
    return redirect(request, _settings_url(access), flash=f"Connection works: the model answered {reply!r}.")


# --- the playground -----------------------------------------------------------------------------------------


@router.get("/project/{projectId}/playground")
def playground_page(request: Request, access: ProjectAccess = Project):
    services = _services(request)
    rows = services.llm_connections.list_rows(access.id) if access.can("llmApiKeys:read") else []
    connections = [
        {"id": r["id"], "provider": r["provider"], "adapter": r["adapter"], "models": list(models_of(r))}
        for r in rows
        if r["adapter"] in CALLABLE_ADAPTERS
    ]
    return page(
        request,
        "playground.html",
        {"connections": connections},
        project=access.project,
        connections=connections,
        can_run=access.can("playground:execute"),
        can_save=access.can("prompts:CUD"),
    )


async def _json_body(request: Request) -> Any:
    session = web(request).codec.loads(request.cookies.get(COOKIE_NAME))
    sent = request.headers.get(CSRF_HEADER) or ""
    if session is None or not sent or not hmac.compare_digest(sent, session.csrf):
        raise WebError(403, "The request did not come from this site. Reload the page and try again.")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_JSON_BYTES:
            raise WebError(413, "The request is too large.")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        raise WebError(400, "The request body must be JSON.") from None


def _error(request: Request, status: int, message: str):
    return json_response(request, {"message": message, "error": "InvalidRequestError"}, status=status)


@router.post("/project/{projectId}/playground/run")
async def run(request: Request, access: ProjectAccess = Project):
    access.require("playground:execute")
    body = await _json_body(request)
    playground = _services(request).playground
    try:
        prepared = await run_in_threadpool(playground.prepare, access.id, body)
    except RequestError as exc:
        return _error(request, exc.status, exc.message)

    async def events():
        async for event in playground.stream(access.id, access.user.id, prepared):
            yield b"data: " + orjson.dumps(event) + b"\n\n"

    headers = {**SECURITY_HEADERS, "X-Accel-Buffering": "no"}
    return StreamingResponse(events(), media_type="text/event-stream", headers=headers)


@router.get("/project/{projectId}/playground/prompt")
def load_prompt(request: Request, name: str = "", version: str = "", access: ProjectAccess = Project):
    access.require("prompts:read")
    if version.strip() and not version.strip().isdigit():
        return _error(request, 400, "version must be a number")
    number = int(version) if version.strip() else None
    try:
        prompt = _services(request).prompts.get(
            access.id, name, version=number, label=None if number else "latest"
        )
    except PromptNotFound:
        return _error(request, 404, f"No prompt {name!r}" + (f" version {version}" if version else ""))
    except PromptError as exc:
        return _error(request, 400, str(exc))
    return json_response(request, prompt)


@router.post("/project/{projectId}/playground/save")
async def save_prompt(request: Request, access: ProjectAccess = Project):
    access.require("prompts:CUD")
    body = await _json_body(request)
    if not isinstance(body, dict):
        return _error(request, 400, "Request body must be a JSON object")
    services = _services(request)
    try:
        create = prompt_body(
            body.get("name"),
            body.get("messages"),
            body.get("model"),
            body.get("params"),
            body.get("commitMessage"),
        )
        created = await run_in_threadpool(services.prompts.create, access.id, create)
    except RequestError as exc:
        return _error(request, exc.status, exc.message)
    except PromptError as exc:
        return _error(request, 400, str(exc))
    return json_response(request, {"name": created["name"], "version": created["version"]}, status=201)
