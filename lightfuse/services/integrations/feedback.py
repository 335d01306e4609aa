"""``POST /api/public/feedback``: feedback a client submits about the API, tools or docs, kept per project.

Langfuse forwards it to its team; Lightfuse keeps it in the ``feedback`` table for the instance's operators
(it is never sent anywhere). The bounds are the spec's: target 1-200 characters, feedback 1-3000, goal 1-1500
when given, referenceUrl an http(s) URL that is stored as text and never fetched.
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Engine

from lightfuse.services.common.clock import now_ms
from lightfuse.services.common.resources import bad
from lightfuse.store.sql import integrations as store
from lightfuse.store.sql.transactions import write_transaction

TARGET_TYPES = ("skill", "mcp-tool", "cli", "docs", "public-api", "other")
MAX_URL = 2048


def _bounded(body: dict[str, Any], key: str, maximum: int, *, required: bool) -> str | None:
    value = body.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not 1 <= len(value.strip()) or len(value) > maximum:
        raise bad(f"{key} must be a string of 1 to {maximum} characters")
    return value


class FeedbackBox:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def submit(self, project_id: str, api_key_id: str | None, body: Any) -> dict[str, str]:
        if not isinstance(body, dict):
            raise bad("The request body must be a JSON object")
        target_type = body.get("targetType")
        if target_type not in TARGET_TYPES:
            raise bad(f"targetType must be one of {', '.join(TARGET_TYPES)}")
        url = body.get("referenceUrl")
        if url is not None:
            parts = urlsplit(url) if isinstance(url, str) else None
            if (
                parts is None
                or parts.scheme not in ("http", "https")
                or not parts.netloc
                or len(url) > MAX_URL
            ):
                raise bad("referenceUrl must be an http(s) URL")
        values = {
            "id": str(uuid.uuid4()),
            "project_id": project_id,
            "api_key_id": api_key_id,
            "target_type": target_type,
            "target": _bounded(body, "target", 200, required=True),
            "feedback": _bounded(body, "feedback", 3000, required=True),
            "goal": _bounded(body, "goal", 1500, required=False),
            "reference_url": url,
            "created_at": now_ms(),
        }
        with write_transaction(self._engine) as conn:
            store.insert_feedback(conn, values)
        return {"id": values["id"]}
