"""How many bytes of ingestion request bodies the server holds at once (``LIGHTFUSE_INGEST_QUEUE_MAX_BYTES``).

A request body is held from admission until its response: read, decoded into events (several times its size
in Python objects), waiting for the writer, committed. Bounding the sum of the bodies held bounds that memory
where the event count alone (``LIGHTFUSE_INGEST_QUEUE_MAX_EVENTS``) does not: 64 clients sending 4 MB batches
are 64 x 4 MB before the first event is queued.

Contract: ``try_acquire(n)`` admits a body of ``n`` declared bytes, or answers False when admitting it would
pass the bound (the caller answers 503 + Retry-After without reading it); a body is always admitted while
nothing is held, so one request larger than the bound still goes through alone. ``add(n)`` counts bytes that
arrive without a declared length (admitted, then counted as they come). ``release(n)`` gives bytes back.
"""

from __future__ import annotations

import threading

__all__ = ["IntakeBudget"]


class IntakeBudget:
    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._held = 0
        self._lock = threading.Lock()
        # requests refused for the bound since the start
        self.refusals = 0

    @property
    def held_bytes(self) -> int:
        return self._held

    def try_acquire(self, nbytes: int) -> bool:
        with self._lock:
            if self._held > 0 and self._held + nbytes > self.max_bytes:
                self.refusals += 1
                return False
            self._held += nbytes
            return True

    def add(self, nbytes: int) -> None:
        with self._lock:
            self._held += nbytes

    def release(self, nbytes: int) -> None:
        if nbytes:
            with self._lock:
                self._held -= nbytes
