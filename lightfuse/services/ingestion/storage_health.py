"""Whether the store can write: set by the writers' outcomes, read by /api/public/ready and /metrics.

A write that fails for lack of space (``StoreFull``) marks the store full; the next successful write clears it.
While it is marked, ``writable()`` also runs a small probe write at most once per ``probe_interval`` seconds,
so a server that receives no writes (taken out of a load balancer by its failing readiness check, say) still
notices when space came back.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from sqlalchemy import Engine

from lightfuse.store.capacity import StoreFull, probe_writable

__all__ = ["StorageHealth", "StoreFull"]

log = logging.getLogger(__name__)

# what 503 answers for a full store ask clients to wait before retrying, in seconds
RETRY_AFTER_SECONDS = 5


class StorageHealth:
    def __init__(self, engine: Engine, data_dir: Path | None = None, probe_interval: float = 2.0) -> None:
        self._engine = engine
        self._data_dir = data_dir
        self._probe_interval = probe_interval
        self._lock = threading.Lock()
        self._full = False
        self._next_probe = 0.0
        # requests answered 503 for lack of space since the start (the /metrics counter)
        self.refusals = 0

    @property
    def full(self) -> bool:
        return self._full

    def record_full(self) -> None:
        with self._lock:
            if not self._full:
                log.error("the store is out of space: writes are refused with 503 until space comes back")
            self._full = True
            self._next_probe = time.monotonic() + self._probe_interval

    def count_refusal(self) -> None:
        with self._lock:
            self.refusals += 1

    def record_written(self) -> None:
        if self._full:
            with self._lock:
                if self._full:
                    log.warning("the store writes again")
                self._full = False

    def writable(self) -> bool:
        """False while the last write failed for lack of space and no probe since has succeeded."""
        if not self._full:
            return True
        with self._lock:
            if time.monotonic() < self._next_probe:
                return False
            self._next_probe = time.monotonic() + self._probe_interval
        try:
            ok = probe_writable(self._engine, self._data_dir)
        except Exception:  # another failure is not evidence of space; keep the state, try again later
            log.exception("store write probe failed")
            return False
        if ok:
            self.record_written()
        return ok
