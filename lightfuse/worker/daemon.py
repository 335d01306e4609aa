"""A background job run periodically inside the server's event loop, in a worker thread.

``PeriodicDaemon(name, job, interval=, first_delay=)``: ``start()`` (inside a running loop, e.g. an ASGI
lifespan) runs ``job(should_stop)`` after ``first_delay`` seconds and then ``interval`` seconds after each run
ends, so runs never overlap. The job runs in a thread (it does blocking database and blob I/O) and should ask
``should_stop()`` between units of work: ``await stop()`` sets it, wakes a sleeping daemon and waits for the
current run to return. An exception is logged and the next round runs as planned; the daemon never dies of it.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

Job = Callable[[Callable[[], bool]], object]


class PeriodicDaemon:
    def __init__(self, name: str, job: Job, *, interval: float, first_delay: float = 0) -> None:
        self.name = name
        self._job = job
        self._interval = interval
        self._first_delay = first_delay
        self._stopping = threading.Event()  # read by the job's thread
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._stopping.clear()
        self._wake = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run(), name=self.name)

    async def stop(self, timeout: float = 30) -> None:
        """Ask the job to stop, and wait for it (at most ``timeout`` seconds, then the task is cancelled)."""
        if self._task is None:
            return
        self._stopping.set()
        assert self._wake is not None
        self._wake.set()
        task, self._task = self._task, None
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout)
        except TimeoutError:
            log.warning("%s did not stop within %s s", self.name, timeout)
            task.cancel()

    async def _run(self) -> None:
        delay = self._first_delay
        while not await self._sleep(delay):
            try:
                await asyncio.to_thread(self._job, self._stopping.is_set)
            except Exception:
                log.exception("%s failed; next run in %s s", self.name, self._interval)
            delay = self._interval

    async def _sleep(self, seconds: float) -> bool:
        """Sleep; True when asked to stop."""
        assert self._wake is not None
        try:
            await asyncio.wait_for(self._wake.wait(), seconds)
        except TimeoutError:
            pass
        return self._stopping.is_set()
