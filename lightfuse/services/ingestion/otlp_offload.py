"""OTLP exports decoded in helper processes, so that the server's own GIL is left to HTTP and the writer.

Decoding, mapping and validating an export is pure Python (CPU per span in the helper under
bench/ingest_bench.py --otlp: ~22 us on the fastest development VM, 51-60 us on one 2-3x slower); in the
server's process it competes for the one GIL with the ingestion writer, which then waits for the GIL after
every SQLite call and caps the whole process at about one core. ``DecodeOffload`` runs that step in child
processes instead (``decode_to_events`` is the whole step; it imports no database code), and hands the
validated events back.

Contract:
* ``run(body, content_type, content_encoding, now_ms)`` returns what ``decode_to_events`` returns, or raises
  what it raises (``OtlpDecodeError``, ``OtlpRejected``) - wherever it ran;
* small exports, and every export while the pool is starting or after a child died, run in the calling
  thread: nothing waits for a process to start, and no input is lost to a dead child;
* ``close`` stops the children; a pool that is never used never starts one;
* at most ``processes + 1`` exports are decoded at once (in the children and inline together): each decode
  turns its body into several times as many bytes of Python objects, and the request thread pool would
  otherwise run dozens at once under overload; the others wait holding only their bodies.
"""

from __future__ import annotations

import logging
import multiprocessing
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from lightfuse.ingest.otlp_decode import decode_export
from lightfuse.ingest.otlp_mapping import MappedExport, map_export
from lightfuse.runtime import settle_heap
from lightfuse.services.ingestion.events import EventError, ValidEvent, validate_event

log = logging.getLogger(__name__)

__all__ = ["DecodeOffload", "OtlpRejected", "decode_to_events"]

# Below this many body bytes (a few spans) the round trip to a child costs more than the decoding it saves.
DEFAULT_MIN_OFFLOAD_BYTES = 16 * 1024


class OtlpRejected(Exception):
    """The export decoded but maps to events the pipeline cannot take; nothing was stored."""


def decode_to_events(
    body: bytes, content_type: str, content_encoding: str | None, now_ms: int
) -> MappedExport:
    """Decode, map and validate one export: the mapping's ``MappedExport`` with ValidEvents for events, so the
    caller applies its trace claims. Pure: the same in a child process as in the server."""
    mapped = map_export(decode_export(body, content_type, content_encoding), now_ms)
    valid: list[ValidEvent] = []
    for raw in mapped.events:
        result = validate_event(raw, "project", epoch_ms_times=True)
        if isinstance(result, EventError):
            raise OtlpRejected(f"span {raw.get('body', {}).get('id')}: {result.error}")
        if result is not None:
            valid.append(result)
    return mapped._replace(events=valid)


class DecodeOffload:
    """A lazily started pool of ``processes`` children for ``decode_to_events``; 0 processes = always inline."""

    def __init__(self, processes: int, min_bytes: int = DEFAULT_MIN_OFFLOAD_BYTES) -> None:
        self._processes = processes
        self._min_bytes = min_bytes
        self._lock = threading.Lock()
        self._pool: ProcessPoolExecutor | None = None
        self._ready = False
        self._closed = False
        self._slots = threading.BoundedSemaphore(processes + 1)

    def run(self, body: bytes, content_type: str, content_encoding: str | None, now_ms: int) -> MappedExport:
        with self._slots:
            return self._run(body, content_type, content_encoding, now_ms)

    def _run(self, body: bytes, content_type: str, content_encoding: str | None, now_ms: int) -> MappedExport:
        pool = self._pool if self._ready else None
        if pool is None:
            if self._processes > 0 and len(body) >= self._min_bytes:
                self._start_in_background()
            return decode_to_events(body, content_type, content_encoding, now_ms)
        try:
            future = pool.submit(decode_to_events, body, content_type, content_encoding, now_ms)
        except RuntimeError:  # the pool broke or shut down since it was looked up (BrokenProcessPool is one)
            return decode_to_events(body, content_type, content_encoding, now_ms)
        try:
            return future.result()
        except BrokenProcessPool:
            # a child died (killed from outside, out of memory): this export is decoded here, a new pool later
            log.warning("an OTLP decode process died; restarting the pool")
            self._discard(pool)
            return decode_to_events(body, content_type, content_encoding, now_ms)

    @property
    def ready(self) -> bool:
        """Whether exports of ``min_bytes`` and more now go to the children."""
        return self._ready

    def close(self) -> None:
        with self._lock:
            self._closed = True
            pool, self._pool, self._ready = self._pool, None, False
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    # --- pool lifecycle ---------------------------------------------------------------------------------------

    def _start_in_background(self) -> None:
        with self._lock:
            if self._pool is not None or self._closed:
                return
            # spawn, not fork: the server has threads (writer, checkpointer) whose locks a fork would copy
            self._pool = ProcessPoolExecutor(
                self._processes, mp_context=multiprocessing.get_context("spawn"), initializer=settle_heap
            )
            pool = self._pool
        threading.Thread(
            target=self._warm_up, args=(pool,), name="lightfuse-otlp-pool-start", daemon=True
        ).start()

    def _warm_up(self, pool: ProcessPoolExecutor) -> None:
        """Start every child (a first call imports the decoder there) before exports are sent to them."""
        try:
            for future in [pool.submit(_warm, None) for _ in range(self._processes)]:
                future.result()
        except Exception:
            # the pool stays registered (not ready), so no later export tries again: one failed start is logged
            # once and everything is decoded in the server, which works, only with less throughput
            log.exception("OTLP decode processes could not start; exports are decoded in the server")
            pool.shutdown(wait=False, cancel_futures=True)
            return
        with self._lock:
            if self._pool is pool:
                self._ready = True

    def _discard(self, pool: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._pool is pool:
                self._pool, self._ready = None, False
        pool.shutdown(wait=False, cancel_futures=True)


def _warm(_: Any) -> None:
    return None
