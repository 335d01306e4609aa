"""OTLP trace exports -> Langfuse events -> the same validation and writer as the batch API.

Contract: ``ingest`` either stores every span of the export or none of it (a malformed export is refused
whole, as Langfuse does); it returns only after the writer committed, so an OTLP 200 means stored.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Iterable

from lightfuse.ingest.otlp_decode import OtlpDecodeError
from lightfuse.services.common.clock import now_ms
from lightfuse.services.ingestion.events import ValidEvent
from lightfuse.services.ingestion.otlp_offload import DecodeOffload, OtlpRejected
from lightfuse.services.ingestion.pipeline import IngestionPipeline

__all__ = ["OtlpIngestor", "OtlpDecodeError", "OtlpRejected"]


class RecentTraces:
    """Which traces were seen in the last ``ttl`` seconds (Langfuse keeps this in Redis with SET NX).

    A trace seen recently gets no extra shallow trace event from its child spans, so a root span's
    ``public`` flag is not reset by a later export of its children.
    """

    def __init__(self, ttl: float = 600.0, max_entries: int = 200_000) -> None:
        self._ttl = ttl
        self._max = max_entries
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def claim(self, key: str) -> bool:
        now = time.monotonic()
        with self._lock:
            seen_at = self._seen.get(key)
            if seen_at is not None and now - seen_at < self._ttl:
                return False
            self._seen[key] = now
            self._seen.move_to_end(key)
            while len(self._seen) > self._max:
                self._seen.popitem(last=False)
            return True

    def release(self, keys: Iterable[str]) -> None:
        """Forget claims whose export was not stored, so its retry still creates the trace row."""
        with self._lock:
            for key in keys:
                self._seen.pop(key, None)


class OtlpIngestor:
    def __init__(self, pipeline: IngestionPipeline, offload: DecodeOffload | None = None) -> None:
        self._pipeline = pipeline
        self._recent = RecentTraces()
        self._offload = offload or DecodeOffload(0)

    def to_events(
        self, project_id: str, body: bytes, content_type: str, content_encoding: str | None
    ) -> list[ValidEvent]:
        """Decode, map and validate; raises OtlpDecodeError / OtlpRejected before anything is stored."""
        decoded = self._offload.run(body, content_type, content_encoding, now_ms())
        if not decoded.trace_ids:
            return decoded.events
        claimed: list[str] = []

        def claim(trace_id: str) -> bool:
            key = f"{project_id}:{trace_id}"
            if self._recent.claim(key):
                claimed.append(key)
                return True
            return False

        try:
            dropped = decoded.unclaimed_shallow_ids(claim)
        except BaseException:
            # nothing of this export is stored: a retry must be mapped as if it came first
            self._recent.release(claimed)
            raise
        return [e for e in decoded.events if e.id not in dropped] if dropped else decoded.events

    def close(self) -> None:
        self._offload.close()

    async def ingest(self, project_id: str, events: list[ValidEvent]) -> dict[str, str]:
        try:
            failures = await self._pipeline.submit(project_id, events)
        except BaseException:
            self._release(project_id, events)
            raise
        if failures:
            self._release(project_id, events)
        return failures

    def _release(self, project_id: str, events: list[ValidEvent]) -> None:
        # The claims of this export are not tracked past to_events, so this forgets every trace it
        # touched; at worst a later export of such a trace adds one more shallow trace event.
        trace_ids = {e.entity_id if e.kind == "trace" else e.body.get("traceId") for e in events}
        self._recent.release(f"{project_id}:{tid}" for tid in trace_ids if tid)
