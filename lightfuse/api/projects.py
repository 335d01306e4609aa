"""GET /api/public/projects: the SDKs' auth check."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from lightfuse.api.common import JSONResponse, project_auth
from lightfuse.services.auth.api_keys import ApiAuth, AuthError

router = APIRouter()


@router.get("/api/public/projects")
async def list_projects(request: Request, auth: Annotated[ApiAuth, Depends(project_auth)]):
    project = request.app.state.services.accounts.get_project(auth.project_id)
    if project is None:
        raise AuthError(401, "Invalid credentials. Confirm that you've configured the correct host.")
    item = {
        "id": project["id"],
        "name": project["name"],
        "organization": {"id": project["org_id"], "name": project["org_name"]},
        "metadata": project["metadata"] or {},
    }
    if project["retention_days"]:
        item["retentionDays"] = project["retention_days"]
    return JSONResponse({"data": [item]})
