"""The organisation audit log: who changed memberships, roles, invitations, keys, passwords and SSO settings.

``record_audit(conn, ...)`` writes one entry inside the caller's transaction (so a change and its record commit
together, or neither does); other features (SSO configuration, ...) call it the same way. ``AuditLog.page``
reads one organisation's entries newest first, for OWNER/ADMIN (scope ``auditLogs:read``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine

from lightfuse.services.common.clock import now_ms
from lightfuse.store.sql import user_admin as store
from lightfuse.store.sql.transactions import write_transaction

PAGE_SIZE = 50


@dataclass(frozen=True)
class Actor:
    """Who acted: a signed-in user or an API key (``kind`` USER | API_KEY, as in Langfuse's audit logs)."""

    kind: str
    id: str | None
    label: str | None

    @classmethod
    def user(cls, user) -> Actor:
        return cls("USER", user.id, user.email)

    @classmethod
    def api_key(cls, key_id: str, public_key: str) -> Actor:
        return cls("API_KEY", key_id, public_key)


SYSTEM = Actor("SYSTEM", None, None)


def record_audit(
    conn: Connection,
    *,
    org_id: str,
    actor: Actor,
    action: str,
    resource_type: str,
    resource_id: str | None = None,
    project_id: str | None = None,
    before: Any = None,
    after: Any = None,
    note: str | None = None,
) -> None:
    """One audit entry. ``action`` is ``<resource>.<verb>``, e.g. ``membership.update``, ``sso.update``;
    ``before``/``after`` are JSON values (never secrets)."""
    store.insert_audit(
        conn,
        id=str(uuid.uuid4()),
        org_id=org_id,
        resource_project_id=project_id,
        actor_type=actor.kind,
        actor_user_id=actor.id if actor.kind == "USER" else None,
        actor_api_key_id=actor.id if actor.kind == "API_KEY" else None,
        actor_label=actor.label,
        action=action,
        resource_type=resource_type,
        resource_id=resource_id,
        before=before,
        after=after,
        note=note,
        created_at=now_ms(),
    )


class AuditLog:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def record(self, **kwargs: Any) -> None:
        """``record_audit`` in a transaction of its own (for callers that hold none)."""
        with write_transaction(self._engine) as conn:
            record_audit(conn, **kwargs)

    def page(self, access, page: int = 1, size: int = PAGE_SIZE) -> tuple[list[dict], int]:
        """(entries, total) of the organisation; ``access`` is an OrgAccess that must hold auditLogs:read."""
        access.require("auditLogs:read")
        page = max(int(page), 1)
        with self._engine.connect() as conn:
            return store.list_audit(conn, access.id, limit=size, offset=(page - 1) * size)
