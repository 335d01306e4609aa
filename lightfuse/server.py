"""The HTTP server process: uvicorn with Kubernetes' shutdown order."""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Awaitable, Callable

import uvicorn


class DrainingServer(uvicorn.Server):
    """uvicorn's server with Kubernetes' shutdown order: on SIGTERM readiness turns 503 at once,
    requests are still served for ``delay`` seconds while load balancers take the instance out, then
    uvicorn's graceful shutdown stops listening, finishes the requests in flight (every acknowledged event
    is committed before its answer) and the app's lifespan drains the writer. A second signal stops at
    once. The signal is not re-raised after the shutdown (uvicorn's default), so a clean stop exits 0.
    ``close_others`` (the other listeners' graceful stop, OTLP/gRPC) starts when the HTTP listener closes and
    runs alongside uvicorn's own drain."""

    def __init__(
        self,
        config,
        begin_stopping,
        delay: float,
        close_others: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        super().__init__(config)
        self._begin_stopping = begin_stopping
        self._delay = delay
        self._close_others = close_others
        self._stop_requested = False

    async def shutdown(self, sockets=None) -> None:
        others = asyncio.ensure_future(self._close_others()) if self._close_others else None
        try:
            await super().shutdown(sockets=sockets)
        finally:
            if others is not None:
                await others

    def handle_exit(self, sig, frame) -> None:
        if self._stop_requested:
            if self.should_exit:
                self.force_exit = True
            self.should_exit = True
            return
        self._stop_requested = True
        self._begin_stopping()
        if self._delay <= 0 or sig == signal.SIGINT:  # Ctrl+C at a terminal: nobody balances load there
            self.should_exit = True
            return
        timer = threading.Timer(self._delay, self._shut_down)
        timer.daemon = True
        timer.start()

    def _shut_down(self) -> None:
        self.should_exit = True  # the main loop looks at it every 0.1 s
