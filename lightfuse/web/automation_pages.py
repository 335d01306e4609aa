"""Project settings -> Automations: webhooks on prompt changes (services/automations).

Everyone with ``automations:read`` sees the automations and the delivery log; ``automations:CUD`` (OWNER,
ADMIN) creates, switches, deletes, tests them and regenerates secrets. A new signing secret is answered in the
page itself (never through a redirect, a flash cookie or a URL), once. Every page has its JSON twin
(``Accept: application/json``); the forms answer JSON too, with the Langfuse error shape on refusal.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from lightfuse.services.accounts.web_accounts import ProjectAccess
from lightfuse.services.automations.automations import ACTIONS, AutomationService
from lightfuse.services.common.resources import RequestError
from lightfuse.web.common import (
    Form,
    csrf_form,
    error_response,
    json_response,
    page,
    project_access,
    redirect,
    wants_json,
)

router = APIRouter()
CsrfForm = Depends(csrf_form)
Project = Depends(project_access)


def _service(request: Request) -> AutomationService:
    return request.app.state.services.automations


def _home(access: ProjectAccess) -> str:
    return f"/project/{access.id}/settings/automations"


def _parse_headers(text: str) -> dict[str, str]:
    """``Name: value`` per line (the form's textarea) -> a dict; the service validates names and values."""
    headers: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise RequestError(400, f"Header line {line.strip()[:50]!r} must look like 'Name: value'")
        headers[name.strip()] = value.strip()
    return headers


def _render(request: Request, access: ProjectAccess, status: int = 200, **extra: Any):
    access.require("automations:read")
    service = _service(request)
    automations = service.list(access.id)
    deliveries = service.deliveries(access.id, request.query_params.get("automation") or None, limit=50)
    names = {a["id"]: a["name"] for a in automations}
    data = {"automations": automations, "deliveries": deliveries}
    response = page(
        request,
        "automations.html",
        data,
        project=access.project,
        automations=automations,
        deliveries=deliveries,
        names=names,
        actions=ACTIONS,
        can_edit=access.can("automations:CUD"),
        **extra,
    )
    response.status_code = status
    return response


def _refused(request: Request, access: ProjectAccess, exc: RequestError):
    if wants_json(request):
        return error_response(request, exc.status, exc.message)
    return redirect(request, _home(access), flash=exc.message, kind="error")


@router.get("/project/{projectId}/settings/automations")
def automations_page(request: Request, access: ProjectAccess = Project):
    return _render(request, access)


@router.post("/project/{projectId}/settings/automations")
async def create_automation(request: Request, form: Form = CsrfForm, access: ProjectAccess = Project):
    access.require("automations:CUD")
    try:
        body = {
            "name": form.text("name"),
            "url": form.text("url"),
            "headers": _parse_headers(form.get("headers") or ""),
            "eventActions": form.getlist("actions") or list(ACTIONS),
            "promptName": form.text("prompt_name") or None,
        }
        automation, secret = await run_in_threadpool(_service(request).create, access.id, body)
    except RequestError as exc:
        return _refused(request, access, exc)
    created = {**automation, "secret": secret}
    if wants_json(request):
        return json_response(request, created, status=201)
    # answered directly (no redirect): the secret must never travel through a cookie or a URL
    return await run_in_threadpool(_render, request, access, 200, created=created)


@router.post("/project/{projectId}/settings/automations/{automationId}/{verb}")
async def change_automation(
    automationId: str, verb: str, request: Request, _form: Form = CsrfForm, access: ProjectAccess = Project
):
    access.require("automations:CUD")
    service = _service(request)
    try:
        if verb in ("enable", "disable"):
            await run_in_threadpool(service.set_enabled, access.id, automationId, verb == "enable")
            result: dict[str, Any] = {"id": automationId, "enabled": verb == "enable"}
            message = f"Automation {verb}d."
        elif verb == "delete":
            await run_in_threadpool(service.delete, access.id, automationId)
            result, message = {"id": automationId, "deleted": True}, "Automation deleted."
        elif verb == "test":
            delivery_id = await run_in_threadpool(service.send_test, access.id, automationId)
            result, message = {"deliveryId": delivery_id}, "Test event queued; see the delivery log."
        elif verb == "regenerate-secret":
            secret = await run_in_threadpool(service.regenerate_secret, access.id, automationId)
            if wants_json(request):
                return json_response(request, {"id": automationId, "secret": secret})
            automation = await run_in_threadpool(service.get, access.id, automationId)
            return await run_in_threadpool(
                _render, request, access, 200, created={**automation, "secret": secret}
            )
        else:
            raise RequestError(404, "Not found.")
    except RequestError as exc:
        return _refused(request, access, exc)
    if wants_json(request):
        return json_response(request, result)
    return redirect(request, _home(access), flash=message)
