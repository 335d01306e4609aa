"""The process's own health for the probes: stopping (SIGTERM seen) and whether events arrived recently.

Contract:
* ``Lifecycle.stopping`` turns True once, when the process is asked to stop (``begin_stopping``, called by the
  server's signal hook before the graceful shutdown starts); ``/api/public/ready`` answers 503 from then on.
* ``recent_events(pipeline, window)``: whether this process committed ingested events within ``window``
  seconds (Langfuse's ``failIfNoRecentEvents`` looks 3 minutes back). It is what this process saw: a replica
  that receives no ingestion traffic reports no recent events.
"""

from __future__ import annotations

import logging
import threading
import time

__all__ = ["Lifecycle", "RECENT_EVENTS_WINDOW_SECONDS", "recent_events"]

log = logging.getLogger(__name__)

RECENT_EVENTS_WINDOW_SECONDS = 180


class Lifecycle:
    def __init__(self) -> None:
        self._stopping = threading.Event()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def begin_stopping(self) -> None:
        if not self._stopping.is_set():
            log.info("shutdown requested: readiness is 503 from now on")
        self._stopping.set()


def recent_events(last_commit_monotonic: float | None, window: float = RECENT_EVENTS_WINDOW_SECONDS) -> bool:
    return last_commit_monotonic is not None and time.monotonic() - last_commit_monotonic <= window
