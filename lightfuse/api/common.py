"""Shared HTTP plumbing: JSON responses, Langfuse-shaped errors, auth dependencies, pagination, ISO times."""

from __future__ import annotations

import datetime as dt
import logging
import math
from dataclasses import dataclass
from typing import Annotated, Any

import orjson
from fastapi import Depends, Query, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response

from lightfuse.services.auth.api_keys import ApiAuth, AuthError
from lightfuse.services.common.resources import UnstorableText
from lightfuse.services.common.rows import iso_ms

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

    @app.exception_handler(UnstorableText)
    async def _unstorable(_request: Request, exc: UnstorableText):
        return JSONResponse({"message": str(exc), "error": "InvalidRequestError"}, 400)

    @app.exception_handler(AuthError)
    async def _auth_error(_request: Request, exc: AuthError):
        return JSONResponse({"message": exc.message}, exc.status)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError):
        issues = [
            {
                "code": e.get("type"),
                "path": [p for p in e.get("loc", ()) if p not in ("body", "query")],
                "message": e.get("msg"),
            }
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

    app.add_middleware(CatchAll)


_INTERNAL_ERROR = orjson.dumps({"message": "Internal Server Error", "error": "An unknown error occurred"})


class CatchAll:
    """The innermost answer to anything a route raises that no handler above maps: Langfuse's 500 body.

    An ``exception_handler(Exception)`` would not do: Starlette runs it in its outermost middleware and then
    re-raises, so uvicorn logged a second traceback as an unhandled error and closed the keep-alive connection.
    Here the exception ends: it is logged once (method and path only, never headers or the query string, which
    may hold credentials) and the connection stays usable. A client that went away mid-body has nobody left to
    answer, which is not a server error: one debug line.
    """

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_tracking(message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, send_tracking)
        except ClientDisconnect:
            log.debug(
                "client disconnected before sending the whole body: %s %s", scope["method"], scope["path"]
            )
        except Exception:
            log.exception("unhandled error in %s %s", scope["method"], scope["path"])
            if started:
                raise  # half a response is out: only closing the connection tells the client
            await send(
                {
                    "type": "http.response.start",
                    "status": 500,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(_INTERNAL_ERROR)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": _INTERNAL_ERROR})


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


# the last page a list endpoint serves: (page - 1) * limit stays far inside the signed 64-bit OFFSET that
# SQLite and Postgres take (an unbounded page overflowed it: a 500), and no client pages this far by offset
MAX_PAGE = 2**31 - 1


def page_params(page: Any, limit: Any, *, default_limit: int = 50, max_limit: int = 100) -> tuple[int, int]:
    def as_int(value: Any, name: str, default: int) -> int:
        if value is None or value == "":
            return default
        # int() of a long digit string is slow (CPython caps it at 4300 digits): refuse it before converting
        if isinstance(value, str) and len(value.strip()) > 20:
            raise bad_request(f"{name} is out of range")
        try:
            return int(value)
        except (TypeError, ValueError):
            raise bad_request(f"{name} must be an integer") from None

    p = as_int(page, "page", 1)
    lim = as_int(limit, "limit", default_limit)
    if not 1 <= p <= MAX_PAGE:
        raise bad_request(f"page must be between 1 and {MAX_PAGE}")
    if lim < 1 or lim > max_limit:
        raise bad_request(f"limit must be between 1 and {max_limit}")
    return p, lim


@dataclass(frozen=True)
class Page:
    """A validated ``page``/``limit`` pair of a paginated list route."""

    page: int
    limit: int

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.limit


# module-level: the annotations are strings (``from __future__``) that FastAPI resolves in this module's globals
PageQuery = Annotated[str | None, Query(description="1-based page number, at most 2147483647")]
LimitQuery = Annotated[str | None, Query(description="items per page, at least 1")]


def pagination(*, default_limit: int = 50, max_limit: int = 100):
    """The dependency every paginated list route takes (see ``Paging``): bounded, documented in the OpenAPI."""

    def dependency(
        page: PageQuery = None,
        limit: LimitQuery = None,
    ) -> Page:
        return Page(*page_params(page, limit, default_limit=default_limit, max_limit=max_limit))

    return dependency


# the route parameter type of a paginated list route (50 per page by default, at most 100)
Paging = Annotated[Page, Depends(pagination())]


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
        t = dt.datetime.fromisoformat(
            value.replace("Z", "+00:00").replace(" ", "+", 1) if "T" in value else value
        )
    except ValueError:
        raise bad_request(f"{name} must be an ISO-8601 timestamp") from None
    if t.tzinfo is None:
        raise bad_request(f"{name} must include a timezone (e.g. Z or +00:00)")
    return int(t.timestamp() * 1000)
