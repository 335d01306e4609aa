"""A small pool of its own for argon2 password work, with a bounded wait queue.

Each argon2 hash or verify takes 64 MiB and tens of milliseconds of CPU. Run in the request thread pool, 40
concurrent sign-ins pushed the server's RSS to 1.8 GiB and took every thread the API routes use (security issue
#13). Here at most ``threads`` run at once and at most ``queue`` more wait; beyond that ``run`` raises
``HashingBusy`` at once (the page answers 503 + Retry-After) instead of queueing without bound. Callers await
the result, so a waiting sign-in holds no thread of the API's pool either.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


class HashingBusy(RuntimeError):
    """Too many password checks are running or waiting; the client should retry shortly."""

    retry_after_s = 1


class PasswordPool:
    def __init__(self, threads: int = 2, queue: int = 8) -> None:
        self.threads = max(int(threads), 1)
        self.queue = max(int(queue), 0)
        self._executor = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="lightfuse-argon2")
        self._slots = threading.BoundedSemaphore(self.threads + self.queue)
        self._lock = threading.Lock()
        # instrumentation for tests and diagnostics: jobs running now, the most ever running at once
        self.running = 0
        self.peak_running = 0
        self.rejected = 0

    def _call(self, fn: Callable[..., T], *args) -> T:
        with self._lock:
            self.running += 1
            self.peak_running = max(self.peak_running, self.running)
        try:
            return fn(*args)
        finally:
            with self._lock:
                self.running -= 1

    async def run(self, fn: Callable[..., T], *args) -> T:
        if not self._slots.acquire(blocking=False):
            with self._lock:
                self.rejected += 1
            raise HashingBusy("Too many sign-ins at once; try again in a moment.")
        try:
            future = self._executor.submit(self._call, fn, *args)
        except BaseException:
            self._slots.release()
            raise
        # released when the job ends or, if the client went away before it started, when it is cancelled
        future.add_done_callback(lambda _f: self._slots.release())
        return await asyncio.wrap_future(future)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
