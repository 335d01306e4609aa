"""Shared HTTP plumbing: JSON responses, Langfuse-shaped errors, auth dependencies, pagination, ISO times."""

from __future__ import annotations

import datetime as dt
import logging
import math
from typing import Annotated, Any

import orjson
from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from lightfuse.services.auth import ApiAuth, AuthError
from lightfuse.services.rows import iso_ms

log = logging.getLogger(__name__)

ERROR_NAMES = {
    400: "InvalidRequestError",
    401: "UnauthorizedError",
    403: "ForbiddenError",
    404: "LangfuseNotFoundError",
    405: "MethodNotAllowedError",
    409: "LangfuseConflictError",
    413: "PayloadTooLargeError",
    422: "PayloadTooLargeError",
    500: "InternalServerError",
    501: "NotImplementedError",
    503: "ServiceUnavailableError",
}


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY)


class ApiError(Exception):
    """An error answered as ``{"message", "error"}`` (Langfuse's typed error shape)."""

    def __init__(self, status: int, message: str, error: Any = None, headers: dict | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error = error if error is not None else ERROR_NAMES.get(status, "ApiError")
        self.headers = headers


def not_found(message: str) -> ApiError:
    return ApiError(404, message, "LangfuseNotFoundError")


def bad_request(message: str) -> ApiError:
    return ApiError(400, message, "InvalidRequestError")


def install_error_handlers(app) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError):
        return JSONResponse({"message": exc.message, "error": exc.error}, exc.status, headers=exc.headers)

    @app.exception_handler(AuthError)
    async def _auth_error(_request: Request, exc: AuthError):
        return JSONResponse({"message": exc.message}, exc.status)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError):
        issues = [
            {"code": e.get("type"), "path": [p for p in e.get("loc", ()) if p not in ("body", "query")],
             "message": e.get("msg")}
            for e in exc.errors()
        ]
        return JSONResponse({"message": "Invalid request data", "error": issues}, 400)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException):
        if exc.status_code == 405:
            return JSONResponse({"message": "Method not allowed", "error": "MethodNotAllowedError"}, 405)
        if exc.status_code == 404:
            return JSONResponse({"message": "Not found", "error": "LangfuseNotFoundError"}, 404)
        return JSONResponse(
            {"message": str(exc.detail), "error": ERROR_NAMES.get(exc.status_code, "ApiError")},
            exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception):
        log.exception("unhandled error")
        return JSONResponse({"message": "Internal Server Error", "error": "An unknown error occurred"}, 500)


# --- auth dependencies --------------------------------------------------------------------------------------


def authenticate(request: Request) -> ApiAuth:
    return request.app.state.services.keys.authenticate(request.headers.get("authorization"))


def project_auth(request: Request) -> ApiAuth:
    """Basic auth with a project key: the only way into project data routes."""
    auth = authenticate(request)
    if auth.access_level != "project":
        raise AuthError(403, "Access denied - insufficient permissions for this endpoint")
    return auth


# the route parameter type of every project-data route
ProjectAuth = Annotated[ApiAuth, Depends(project_auth)]


# --- request parsing ----------------------------------------------------------------------------------------


async def read_json(request: Request, limit: int = 1024 * 1024) -> Any:
    body = await read_body(request, limit)
    try:
        return orjson.loads(body) if body else None
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, f"Invalid JSON body: {exc}", "InvalidRequestError") from None


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"Request body exceeds the limit of {limit} bytes", "PayloadTooLargeError")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"Request body exceeds the limit of {limit} bytes", "PayloadTooLargeError")
        chunks.append(chunk)
    return b"".join(chunks)


def page_params(page: Any, limit: Any, *, default_limit: int = 50, max_limit: int = 100) -> tuple[int, int]:
    def as_int(value: Any, name: str, default: int) -> int:
        if value is None or value == "":
            return default
        try:
            return int(value)
        except (TypeError, ValueError):
            raise bad_request(f"{name} must be an integer") from None

    p = as_int(page, "page", 1)
    lim = as_int(limit, "limit", default_limit)
    if p < 1:
        raise bad_request("page must be >= 1")
    if lim < 1 or lim > max_limit:
        raise bad_request(f"limit must be between 1 and {max_limit}")
    return p, lim


def paginated(data: list, page: int, limit: int, total: int) -> dict:
    return {
        "data": data,
        "meta": {"page": page, "limit": limit, "totalItems": total, "totalPages": math.ceil(total / limit)},
    }


# --- times --------------------------------------------------------------------------------------------------


def iso(ms: int | None) -> str | None:
    """Epoch milliseconds -> ``2024-01-01T00:00:00.000Z``."""
    return iso_ms(ms)


def parse_time_param(value: str | None, name: str) -> int | None:
    """An ISO-8601 query parameter with a timezone -> epoch ms (naive times are refused, as in Langfuse)."""
    if value is None or value == "":
        return None
    try:
        t = dt.datetime.fromisoformat(value.replace("Z", "+00:00").replace(" ", "+", 1) if "T" in value else value)
    except ValueError:
        raise bad_request(f"{name} must be an ISO-8601 timestamp") from None
    if t.tzinfo is None:
        raise bad_request(f"{name} must include a timezone (e.g. Z or +00:00)")
    return int(t.timestamp() * 1000)
