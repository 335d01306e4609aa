"""Change listeners: a domain announces a change inside its write transaction, other domains act on it.

A listener is called as ``listener(conn, project_id, event)`` with the writer's open ``Connection``, before
the commit: whatever it writes (an outbox row, say) commits or rolls back with the change itself, so no event
is lost and none is announced for a change that did not happen. It must only write rows (no network calls,
nothing slow: it holds the write transaction), and an exception from it fails the change.

Why listeners rather than an import: ``prompts`` must not depend on ``automations`` (which depends on
``prompts``' data); the composition root (``app.py``) registers ``automations``' listener with the prompt
service, so the arrow stays automations -> prompts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection

# event: {"type": "prompt-version", "action": "created" | "updated" | "deleted", "prompt": <API object>}
ChangeListener = Callable[[Connection, str, dict[str, Any]], None]
