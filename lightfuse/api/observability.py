"""Request metrics and the ingestion byte bound (one ASGI middleware), and ``/metrics`` on its own port.

``ObservabilityMiddleware`` wraps the whole app:
* every HTTP request is counted and timed under its route *template* (``/api/public/traces/{traceId}``, never
  the raw path; ``<unmatched>`` for a path no route has), so the label set stays bounded;
* POSTs to the ingestion routes (``BUDGETED_PATHS``) are admitted against ``IntakeBudget`` by their declared
  Content-Length before a byte is read: beyond the bound they get 503 + Retry-After and the body is never
  buffered. A body without a declared length is counted as it arrives.

``MetricsServer`` serves ``/metrics`` on ``LIGHTFUSE_METRICS_PORT`` from a thread of its own (http.server), so
scrapes answer even while the event loop is busy, and the app's own port then answers 404 for ``/metrics``.
Both check ``LIGHTFUSE_METRICS_TOKEN`` (``Authorization: Bearer <token>``) when it is set.
"""

from __future__ import annotations

import hmac
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson

from lightfuse.services.ingestion.budget import IntakeBudget
from lightfuse.services.operations.metrics import OpsMetrics

log = logging.getLogger(__name__)

__all__ = ["BUDGETED_PATHS", "MetricsServer", "ObservabilityMiddleware", "metrics_token_ok"]

BUDGETED_PATHS = frozenset({"/api/public/ingestion", "/api/public/otel/v1/traces", "/v1/traces"})
PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
UNMATCHED = "<unmatched>"
_BUSY_BODY = orjson.dumps(
    {
        "message": "Ingestion is busy (too many request bytes held), retry shortly",
        "error": "ServiceUnavailableError",
    }
)


def metrics_token_ok(expected: str | None, authorization: str | None) -> bool:
    if not expected:
        return True
    scheme, _, token = (authorization or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), expected.encode())


class ObservabilityMiddleware:
    def __init__(self, app, metrics: OpsMetrics, budget: IntakeBudget) -> None:
        self.app = app
        self.metrics = metrics
        self.budget = budget

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        metrics = self.metrics
        held = 0
        counted = None
        if scope["method"] == "POST" and scope["path"] in BUDGETED_PATHS:
            declared = _content_length(scope)
            if declared is not None:
                if not self.budget.try_acquire(declared):
                    metrics.intake_refusals.labels("intake_bytes").inc()
                    metrics.http_requests.labels("POST", scope["path"], "503").inc()
                    await _send_busy(send)
                    return
                held = declared
            else:
                counted = [0]
                receive = _counting_receive(receive, self.budget, counted)
        # no response at all: 500 when the app raised, else 499 (nginx's "client closed the request")
        status = [499]

        async def send_status(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        started = time.perf_counter()
        metrics.http_in_flight.inc()
        try:
            await self.app(scope, receive, send_status)
        except BaseException:
            if status[0] == 499:
                status[0] = 500
            raise
        finally:
            metrics.http_in_flight.dec()
            self.budget.release(held + (counted[0] if counted else 0))
            route = scope.get("route")
            template = getattr(route, "path", None) or UNMATCHED
            metrics.http_requests.labels(scope["method"], template, str(status[0])).inc()
            metrics.http_duration.labels(scope["method"], template).observe(time.perf_counter() - started)


def _content_length(scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


def _counting_receive(receive, budget: IntakeBudget, counted: list[int]):
    async def wrapped():
        message = await receive()
        size = len(message.get("body", b""))
        if size:
            budget.add(size)
            counted[0] += size
        return message

    return wrapped


async def _send_busy(send) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", b"application/json"),
                (b"retry-after", b"1"),
                (b"content-length", str(len(_BUSY_BODY)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": _BUSY_BODY})


class MetricsServer:
    """``/metrics`` on a port of its own, in a daemon thread."""

    def __init__(self, metrics: OpsMetrics, host: str, port: int, token: str | None) -> None:
        render = metrics.render

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                if self.path.split("?", 1)[0] != "/metrics":
                    self._answer(404, b"not found\n", "text/plain")
                elif not metrics_token_ok(token, self.headers.get("Authorization")):
                    self._answer(401, b"unauthorized\n", "text/plain")
                else:
                    self._answer(200, render(), PROMETHEUS_CONTENT_TYPE)

            def _answer(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:  # scrapes are not worth a log line each
                pass

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="lightfuse-metrics", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
