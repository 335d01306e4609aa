"""The HTTP server process: uvicorn with Kubernetes' shutdown order."""

from __future__ import annotations

import signal
import threading

import uvicorn


class DrainingServer(uvicorn.Server):
    """uvicorn's server with Kubernetes' shutdown order: on SIGTERM readiness turns 503 at once,
    requests are still served for ``delay`` seconds while load balancers take the instance out, then
    uvicorn's graceful shutdown stops listening, finishes the requests in flight (every acknowledged event
    is committed before its answer) and the app's lifespan drains the writer. A second signal stops at
    once. The signal is not re-raised after the shutdown (uvicorn's default), so a clean stop exits 0."""

    def __init__(self, config, begin_stopping, delay: float) -> None:
        super().__init__(config)
        self._begin_stopping = begin_stopping
        self._delay = delay
        self._stop_requested = False

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
