"""Webhook automations on prompt changes (features.md 1.11): configuration and the outbox writer.

An automation is a trigger (prompt-version events ``created`` / ``updated`` / ``deleted``, optionally for one
prompt name) and a webhook action (URL, extra headers, signing secret). The secret is generated here, handed
to the caller once (``create`` and ``regenerate_secret`` return it) and stored AES-256-GCM encrypted under
``ENCRYPTION_KEY`` (``common/secrets_box``); afterwards only a masked form is shown.

``on_change`` is the change listener the composition root registers with the prompt service: it runs inside
the prompt write's transaction and writes one pending delivery per matching enabled automation, so deliveries
commit (or roll back) with the change. Sending is ``delivery.py``'s job.

Who may manage automations (``automations:CUD``: OWNER, ADMIN) is checked by the caller (the web layer holds
the member's role); this service trusts the project id it is given.
"""

from __future__ import annotations

import builtins
import secrets
import uuid
from typing import Any

from sqlalchemy import Connection, Engine

from lightfuse.services.common import secrets_box
from lightfuse.services.common.clock import now_ms
from lightfuse.services.common.outbound import OutboundPolicy, OutboundRefused
from lightfuse.services.common.resources import RequestError, bad, not_found
from lightfuse.services.common.rows import iso_ms
from lightfuse.store.sql import automations as store
from lightfuse.store.sql.transactions import write_transaction

SOURCE = "prompt-version"
ACTIONS = ("created", "updated", "deleted")
SECRET_PREFIX = "lf-whsec_"
# headers the sender sets itself; a configured header may not replace them
RESERVED_HEADERS = frozenset({"content-type", "content-length", "host", "x-langfuse-signature", "user-agent"})
MAX_HEADERS = 20
HIDDEN = "********"  # what is shown of a configured header's value


def payload(delivery_id: str, action: str, prompt: dict[str, Any], now: int) -> dict[str, Any]:
    """The JSON body a webhook receives (Langfuse's prompt-version event shape)."""
    return {
        "id": delivery_id,
        "timestamp": iso_ms(now),
        "type": SOURCE,
        "apiVersion": "v1",
        "action": action,
        "prompt": prompt,
    }


def _mask(secret: str) -> str:
    return f"{SECRET_PREFIX}...{secret[-4:]}"


def automation_to_api(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "enabled": bool(row["enabled"]),
        "trigger": {
            "eventSource": row["event_source"],
            "eventActions": list(row["event_actions"]),
            "promptName": row["prompt_name"],
        },
        "action": {
            "type": "WEBHOOK",
            "url": row["url"],
            "headers": {name: HIDDEN for name in row["headers"]},
            "displaySecretKey": row["display_secret"],
        },
        "consecutiveFailures": row["consecutive_failures"],
        "createdAt": iso_ms(row["created_at"]),
        "updatedAt": iso_ms(row["updated_at"]),
    }


def delivery_to_api(row: dict[str, Any], attempts: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "automationId": row["automation_id"],
        "action": row["action"],
        "status": row["status"],
        "attempts": row["attempts"],
        "lastStatusCode": row["last_status_code"],
        "lastError": row["last_error"],
        "nextAttemptAt": iso_ms(row["next_attempt_at"]) if row["status"] == "pending" else None,
        "createdAt": iso_ms(row["created_at"]),
        "updatedAt": iso_ms(row["updated_at"]),
        "payload": row["payload"],
        "log": [
            {
                "attempt": a["attempt"],
                "startedAt": iso_ms(a["started_at"]),
                "durationMs": a["duration_ms"],
                "statusCode": a["status_code"],
                "error": a["error"],
            }
            for a in attempts
        ],
    }


class AutomationService:
    """Blocking: call from a worker thread."""

    def __init__(self, engine: Engine, encryption_key: str | None, policy: OutboundPolicy) -> None:
        self._engine = engine
        self._key = encryption_key
        self.policy = policy

    # --- configuration ------------------------------------------------------------------------------------

    def list(self, project_id: str) -> list[dict[str, Any]]:
        with self._engine.connect() as conn:
            return [automation_to_api(r) for r in store.list_automations(conn, project_id)]

    def get(self, project_id: str, automation_id: str) -> dict[str, Any]:
        with self._engine.connect() as conn:
            row = store.get_automation(conn, project_id, automation_id)
        if row is None:
            raise not_found("Automation not found")
        return automation_to_api(row)

    def _validate(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise bad("The automation must be an object")
        name = body.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > 255:
            raise bad("name must be a non-empty string of at most 255 characters")
        url = body.get("url")
        if not isinstance(url, str) or not url.strip() or len(url) > 2048:
            raise bad("url must be an http(s) URL of at most 2048 characters")
        url = url.strip()
        try:
            # refused now, with the reason, rather than failing every delivery later (checked again on send)
            self.policy.check_url(url)
        except OutboundRefused as exc:
            raise bad(f"The webhook URL is not allowed: {exc}") from None
        actions = body.get("eventActions", list(ACTIONS))
        if (
            not isinstance(actions, list)
            or not actions
            or any(not isinstance(a, str) or a not in ACTIONS for a in actions)
        ):
            raise bad(f"eventActions must be a non-empty list of {', '.join(ACTIONS)}")
        prompt_name = body.get("promptName")
        if prompt_name is not None and (not isinstance(prompt_name, str) or len(prompt_name) > 255):
            raise bad("promptName must be a string")
        headers = body.get("headers") or {}
        if not isinstance(headers, dict) or len(headers) > MAX_HEADERS:
            raise bad(f"headers must be an object of at most {MAX_HEADERS} string values")
        for key, value in headers.items():
            if not isinstance(value, str) or not key or not _token(key) or any(c in value for c in "\r\n\0"):
                raise bad(f"header {key!r} is not a valid header name and value")
            if key.lower() in RESERVED_HEADERS:
                raise bad(f"header {key!r} is set by Lightfuse and cannot be configured")
        return {
            "name": name.strip(),
            "url": url,
            "event_actions": [a for a in ACTIONS if a in actions],
            "prompt_name": (prompt_name or "").strip() or None,
            "headers": headers,
        }

    def _seal(self, secret: str) -> str:
        if not self._key:
            raise RequestError(400, "ENCRYPTION_KEY must be set to store webhook secrets")
        return secrets_box.encrypt(self._key, secret)

    def create(self, project_id: str, body: Any) -> tuple[dict[str, Any], str]:
        """The new automation and its signing secret (the only time the secret is returned)."""
        values = self._validate(body)
        secret = SECRET_PREFIX + secrets.token_hex(32)
        now = now_ms()
        row = {
            "id": str(uuid.uuid4()),
            "project_id": project_id,
            "event_source": SOURCE,
            "secret_encrypted": self._seal(secret),
            "display_secret": _mask(secret),
            "enabled": True,
            "consecutive_failures": 0,
            "created_at": now,
            "updated_at": now,
            **values,
            # header values often carry credentials (Authorization: ...): sealed like the secret, never shown
            "headers": {k: self._seal(v) for k, v in values["headers"].items()},
        }
        with write_transaction(self._engine) as conn:
            store.create_automation(conn, row)
        return automation_to_api(row), secret

    def regenerate_secret(self, project_id: str, automation_id: str) -> str:
        secret = SECRET_PREFIX + secrets.token_hex(32)
        values = {
            "secret_encrypted": self._seal(secret),
            "display_secret": _mask(secret),
            "updated_at": now_ms(),
        }
        with write_transaction(self._engine) as conn:
            if not store.update_automation(conn, project_id, automation_id, values):
                raise not_found("Automation not found")
        return secret

    def set_enabled(self, project_id: str, automation_id: str, enabled: bool) -> None:
        values: dict[str, Any] = {"enabled": enabled, "updated_at": now_ms()}
        if enabled:
            values["consecutive_failures"] = 0  # switched on again by a person: count afresh
        with write_transaction(self._engine) as conn:
            if not store.update_automation(conn, project_id, automation_id, values):
                raise not_found("Automation not found")

    def delete(self, project_id: str, automation_id: str) -> None:
        with write_transaction(self._engine) as conn:
            if not store.delete_automation(conn, project_id, automation_id):
                raise not_found("Automation not found")

    def send_test(self, project_id: str, automation_id: str) -> str:
        """Queue a sample event for this automation (enabled or not); returns the delivery id."""
        now = now_ms()
        sample = {
            "id": str(uuid.uuid4()),
            "name": "lightfuse-webhook-test",
            "version": 1,
            "type": "text",
            "prompt": "This is a test event sent from the automation settings.",
            "config": {},
            "labels": ["latest"],
            "tags": [],
            "commitMessage": None,
        }
        with write_transaction(self._engine) as conn:
            automation = store.get_automation(conn, project_id, automation_id)
            if automation is None:
                raise not_found("Automation not found")
            return self._add_delivery(conn, automation, "test", "created", sample, now)

    # --- deliveries ---------------------------------------------------------------------------------------

    @staticmethod
    def _add_delivery(
        conn: Connection, automation: dict[str, Any], kind: str, action: str, prompt: dict[str, Any], now: int
    ) -> str:
        delivery_id = str(uuid.uuid4())
        store.add_delivery(
            conn,
            {
                "id": delivery_id,
                "project_id": automation["project_id"],
                "automation_id": automation["id"],
                "action": kind,
                "payload": payload(delivery_id, action, prompt, now),
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
                "updated_at": now,
            },
        )
        return delivery_id

    def on_change(self, conn: Connection, project_id: str, event: dict[str, Any]) -> None:
        """Change listener (common/change_events): outbox rows in the prompt write's own transaction."""
        if event.get("type") != SOURCE:
            return
        action, prompt = event["action"], event["prompt"]
        now = now_ms()
        for automation in store.enabled_automations(conn, project_id, SOURCE):
            if action not in automation["event_actions"]:
                continue
            if automation["prompt_name"] and automation["prompt_name"] != prompt.get("name"):
                continue
            self._add_delivery(conn, automation, action, action, prompt, now)

    def deliveries(
        self, project_id: str, automation_id: str | None = None, limit: int = 50
    ) -> builtins.list[dict[str, Any]]:
        with self._engine.connect() as conn:
            rows = store.list_deliveries(conn, project_id, automation_id, limit)
            attempts = store.list_attempts(conn, [r["id"] for r in rows])
        by_delivery: dict[str, builtins.list[dict[str, Any]]] = {}
        for a in attempts:
            by_delivery.setdefault(a["delivery_id"], []).append(a)
        return [delivery_to_api(r, by_delivery.get(r["id"], [])) for r in rows]


_TOKEN_CHARS = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def _token(name: str) -> bool:
    """An HTTP header name (RFC 9110 token)."""
    return len(name) <= 100 and all(c in _TOKEN_CHARS for c in name)
