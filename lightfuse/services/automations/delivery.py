"""Sending the outbox: signed webhook POSTs, retried with exponential backoff, every attempt logged.

``WebhookSender.run_due(should_stop)`` is the delivery daemon's job (worker/README.md). Each round claims due
deliveries under a lease (``store.sql.automations.claim_due``: one worker per row, also across replicas) and
sends them one by one. An attempt is a POST of the stored JSON payload with:

* ``Content-Type: application/json`` and the automation's configured headers;
* ``x-langfuse-signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`` - Langfuse's header
  and scheme (features.md section 4, webhook-queue): the receiver recomputes the HMAC over the timestamp, a
  dot and the raw body, compares in constant time and may refuse old timestamps (replays). ``signature``
  below is the one implementation; ``verify`` is its counterpart for receivers and tests.

A 2xx answer succeeds. Anything else (status, timeout, connection error) is retried after
``base_delay * 2**(attempts-1)`` seconds (capped at ``max_delay``) until ``max_attempts`` attempts, then the
delivery fails; a URL the outbound policy refuses fails at once (retrying cannot change the answer). After
``DISABLE_AFTER`` deliveries in a row have failed, the automation is switched off (as Langfuse does).

At-least-once: a worker that dies between the POST and recording it leaves the lease to expire, and the
delivery is sent again; receivers deduplicate by the payload's ``id``.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import orjson
from sqlalchemy import Engine

from lightfuse.services.common import secrets_box
from lightfuse.services.common.clock import now_ms
from lightfuse.services.common.outbound import OutboundPolicy, OutboundRefused
from lightfuse.store.sql import automations as store
from lightfuse.store.sql.transactions import write_transaction

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "x-langfuse-signature"
# finished deliveries (and their attempt log) are kept this long, then pruned at most once an hour
LOG_RETENTION_MS = 30 * 24 * 3600 * 1000
PRUNE_EVERY_S = 3600.0
DISABLE_AFTER = 5
MAX_ERROR_CHARS = 500


def signature(secret: str, body: bytes, timestamp: int) -> str:
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(
    secret: str, body: bytes, header: str, tolerance_s: float | None = 300, now: float | None = None
) -> bool:
    """True when ``header`` signs ``body`` with ``secret`` (and, with a tolerance, is recent enough)."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if tolerance_s is not None and abs((now or time.time()) - timestamp) > tolerance_s:
        return False
    expected = signature(secret, body, timestamp).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))


class WebhookSender:
    """Blocking: runs in the daemon's worker thread."""

    def __init__(
        self,
        engine: Engine,
        encryption_key: str | None,
        policy: OutboundPolicy,
        *,
        max_attempts: int = 8,
        base_delay_s: float = 10.0,
        max_delay_s: float = 3600.0,
        batch: int = 10,
    ) -> None:
        self._engine = engine
        self._key = encryption_key
        self._policy = policy
        self.max_attempts = max_attempts
        self.base_delay_s = base_delay_s
        self.max_delay_s = max_delay_s
        self.batch = batch
        # a lease outlives one POST with room to record it; a worker gone longer than this is presumed dead
        self.lease_ms = int((policy.timeout_s + 30) * 1000)
        self._next_prune = 0.0  # monotonic time of the next prune

    def backoff_ms(self, attempts: int) -> int:
        return int(min(self.base_delay_s * 2 ** (attempts - 1), self.max_delay_s) * 1000)

    def run_due(self, should_stop: Callable[[], bool] = lambda: False) -> int:
        """Send what is due, batch after batch, until nothing is due or asked to stop; the number of attempts."""
        owner = uuid.uuid4().hex  # per round: a row this round claimed is finished by this round only
        sent = 0
        if time.monotonic() >= self._next_prune:
            self.prune(now_ms() - LOG_RETENTION_MS, should_stop)
            self._next_prune = time.monotonic() + PRUNE_EVERY_S
        with self._policy.client() as client:
            while not should_stop():
                claimed = store.claim_due(self._engine, owner, now_ms(), self.lease_ms, self.batch)
                if not claimed:
                    break
                for row in claimed:
                    self.attempt(client, owner, row)
                    sent += 1
        return sent

    def prune(self, before_ms: int, should_stop: Callable[[], bool] = lambda: False) -> int:
        """Drop finished deliveries last changed before ``before_ms``, in chunks; the number dropped."""
        dropped = 0
        while not should_stop():
            n = store.prune_finished(self._engine, before_ms)
            dropped += n
            if n < 1000:
                break
        return dropped

    def attempt(self, client: httpx.Client, owner: str, row: dict[str, Any]) -> None:
        with self._engine.connect() as conn:
            automation = store.get_automation_by_id(conn, row["automation_id"])
        started, t0 = now_ms(), time.monotonic()
        status_code: int | None = None
        error: str | None = None
        final = False
        if automation is None:
            error, final = "the automation was deleted", True
        elif not automation["enabled"] and row["action"] != "test":
            error, final = "the automation is disabled", True
        else:
            try:
                status_code = self._post(client, automation, row["payload"])
                if not 200 <= status_code < 300:
                    error = f"HTTP {status_code}"
            except OutboundRefused as exc:
                error, final = f"refused: {exc}", True
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS] or type(exc).__name__
            except ValueError as exc:  # the secret cannot be decrypted (ENCRYPTION_KEY changed)
                error, final = str(exc), True
        attempts = row["attempts"] + 1
        now = now_ms()
        values: dict[str, Any] = {
            "attempts": attempts,
            "last_status_code": status_code,
            "last_error": error,
            "updated_at": now,
        }
        if error is None:
            values["status"] = "succeeded"
        elif final or attempts >= self.max_attempts:
            values["status"] = "failed"
        else:
            values["status"] = "pending"
            values["next_attempt_at"] = now + self.backoff_ms(attempts)
        record = {
            "id": str(uuid.uuid4()),
            "project_id": row["project_id"],
            "delivery_id": row["id"],
            "attempt": attempts,
            "started_at": started,
            "duration_ms": int((time.monotonic() - t0) * 1000),
            "status_code": status_code,
            "error": error,
        }
        with write_transaction(self._engine) as conn:
            if not store.finish_attempt(conn, row["id"], owner, values, record):
                log.warning("webhook delivery %s: lease lost before its attempt was recorded", row["id"])
                return
            if automation is not None and row["action"] != "test":
                if values["status"] == "succeeded":
                    store.reset_failures(conn, automation["id"])
                elif values["status"] == "failed":
                    store.add_failure(conn, automation["id"], now, DISABLE_AFTER)

    def _post(self, client: httpx.Client, automation: dict[str, Any], payload: Any) -> int:
        if not self._key:
            raise ValueError("ENCRYPTION_KEY is not set; the webhook secret cannot be read")
        secret = secrets_box.decrypt(self._key, automation["secret_encrypted"])
        body = orjson.dumps(payload)
        headers = {
            **{k: secrets_box.decrypt(self._key, v) for k, v in automation["headers"].items()},
            "Content-Type": "application/json",
            "User-Agent": "Lightfuse-Webhooks/1",
            SIGNATURE_HEADER: signature(secret, body, int(time.time())),
        }
        self._policy.check_url(automation["url"])  # the client's hook checks again; this one names the cause
        # streamed and left unread: only the status counts, and a huge answer must not be loaded
        with client.stream("POST", automation["url"], content=body, headers=headers) as response:
            return response.status_code
