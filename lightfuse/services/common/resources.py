"""Small pieces shared by the dataset, media, comment and annotation-queue services."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from lightfuse.services.common.rows import iso_ms

# re-exported: the HTTP layer answers it as a 400 (api/common.py) without importing the store
from lightfuse.store.sql.database import UnstorableText  # noqa: F401


class RequestError(Exception):
    """A request the service refuses; ``status`` and ``message`` go to the client as they are."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def bad(message: str) -> RequestError:
    return RequestError(400, message)


def not_found(message: str) -> RequestError:
    return RequestError(404, message)


def iso(ms: int | None) -> str | None:
    """Epoch ms -> ``2024-01-01T00:00:00.000Z``."""
    return iso_ms(ms)


def parse_iso(value: Any, name: str) -> int:
    """An ISO-8601 timestamp with a timezone -> epoch ms; naive or malformed values are a 400."""
    if not isinstance(value, str):
        raise bad(f"{name} must be an ISO-8601 datetime string")
    try:
        t = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise bad(f"{name} must be an ISO-8601 datetime") from None
    if t.tzinfo is None:
        raise bad(f"{name} must include a timezone (e.g. Z or +00:00)")
    return int(t.timestamp() * 1000)


def optional_str(body: dict[str, Any], key: str, *, max_len: int | None = None) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise bad(f"{key} must be a string")
    if max_len is not None and len(value) > max_len:
        raise bad(f"{key} must be at most {max_len} characters")
    return value


def required_str(body: dict[str, Any], key: str, *, max_len: int | None = None) -> str:
    value = optional_str(body, key, max_len=max_len)
    if not value:
        raise bad(f"{key} is required and must be a non-empty string")
    return value


def json_object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise bad("Request body must be a JSON object")
    return body


# C0 control characters other than tab, newline and carriage return: Postgres cannot store NUL in JSONB and
# the others only break consumers (Langfuse strips them from dataset items too).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def sanitize(value: Any) -> Any:
    if isinstance(value, str):
        return _CONTROL.sub("", value)
    if isinstance(value, list):
        return [sanitize(v) for v in value]
    if isinstance(value, dict):
        return {sanitize(k): sanitize(v) for k, v in value.items()}
    return value
