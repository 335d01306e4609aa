"""The process's own health for the probes: stopping (SIGTERM seen) and whether events arrived recently.

Contract:
* ``Lifecycle.stopping`` turns True once, when the process is asked to stop (``begin_stopping``, called by the
  server's signal hook before the graceful shutdown starts); ``/api/public/ready`` answers 503 from then on.
* ``on_close(stop)`` registers an async ``stop()`` of a listener other than the HTTP one (OTLP/gRPC);
  ``close()`` runs them together, called by the server when it closes its HTTP listener, so every listener
  stops taking work at the same moment and drains alongside the others.
* ``recent_events(pipeline, window)``: whether this process committed ingested events within ``window``
  seconds (Langfuse's ``failIfNoRecentEvents`` looks 3 minutes back). It is what this process saw: a replica
  that receives no ingestion traffic reports no recent events.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Awaitable, Callable

__all__ = ["Lifecycle", "RECENT_EVENTS_WINDOW_SECONDS", "recent_events"]

log = logging.getLogger(__name__)

RECENT_EVENTS_WINDOW_SECONDS = 180


class Lifecycle:
    def __init__(self) -> None:
        self._stopping = threading.Event()
        self._closers: list[Callable[[], Awaitable[None]]] = []

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def begin_stopping(self) -> None:
        if not self._stopping.is_set():
            log.info("shutdown requested: readiness is 503 from now on")
        self._stopping.set()

    def on_close(self, stop: Callable[[], Awaitable[None]]) -> None:
        self._closers.append(stop)

    async def close(self) -> None:
        await asyncio.gather(*(stop() for stop in self._closers))


def recent_events(last_commit_monotonic: float | None, window: float = RECENT_EVENTS_WINDOW_SECONDS) -> bool:
    return last_commit_monotonic is not None and time.monotonic() - last_commit_monotonic <= window
