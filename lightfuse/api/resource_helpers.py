"""Plumbing shared by the dataset, media, comment and annotation-queue routers."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from fastapi import Request

from lightfuse.api.common import ApiError
from lightfuse.services.common.resources import RequestError


@contextlib.contextmanager
def service_errors() -> Iterator[None]:
    """A service's RequestError -> Langfuse's typed ``{"message", "error"}`` answer with its status."""
    try:
        yield
    except RequestError as exc:
        raise ApiError(exc.status, exc.message) from None


def public_base_url(request: Request) -> str:
    """Where clients reach this server: NEXTAUTH_URL when it was configured, else the request's own base.

    The setting has a default (http://localhost:3000), so only an explicitly set value is trusted; a server on
    another port or host without NEXTAUTH_URL still hands out URLs that work for the client that asked.
    """
    settings = request.app.state.services.settings
    if "nextauth_url" in settings.model_fields_set and settings.nextauth_url:
        return settings.nextauth_url.rstrip("/")
    return str(request.base_url).rstrip("/")
