"""Deleted projects' data removed for good: the second half of ``WebAccounts.delete_project``.

Deleting a project only marks it (``deleted_at``) and revokes its keys, so the request answers at once. The
``ProjectPurger`` - run periodically by a ``worker.daemon.PeriodicDaemon`` that ``serve`` starts - then
removes every row of each project deleted longer than the grace period ago, in short transactions, and the
media bytes in the blob store (``store/sql/project_purge.py``). A purge that is interrupted, or fails (the
blob store is down), leaves the project marked and the next run resumes it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from sqlalchemy import Engine

from lightfuse.services.common.clock import now_ms
from lightfuse.store.blobs import BlobStore
from lightfuse.store.sql import project_purge as store

log = logging.getLogger(__name__)


class ProjectPurger:
    def __init__(
        self,
        engine: Engine,
        blobs: BlobStore,
        *,
        grace_seconds: float = 0,
        chunk_rows: int = store.CHUNK_ROWS,
    ) -> None:
        self._engine = engine
        self._blobs = blobs
        self._grace_ms = int(grace_seconds * 1000)
        self._chunk_rows = chunk_rows
        # one purge at a time per process (the daemon and a test or CLI calling purge_due must not interleave)
        self._lock = threading.Lock()

    def pending(self) -> list[str]:
        """Projects due for purging, oldest deletion first."""
        with self._engine.connect() as conn:
            return store.list_deleted_projects(conn, now_ms() - self._grace_ms)

    def purge_due(self, should_stop: Callable[[], bool] = lambda: False) -> list[str]:
        """Purge every due project; -> the ids that are now gone. One project's failure is logged and the
        others still run; it is retried on the next call."""
        purged: list[str] = []
        with self._lock:
            for project_id in self.pending():
                if should_stop():
                    break
                try:
                    done = store.purge_project(
                        self._engine,
                        project_id,
                        delete_blobs=self._delete_blobs,
                        should_stop=should_stop,
                        chunk_rows=self._chunk_rows,
                    )
                except Exception:
                    log.exception("could not purge deleted project %s; will retry", project_id)
                    continue
                if done:
                    log.info("purged deleted project %s", project_id)
                    purged.append(project_id)
        return purged

    def _delete_blobs(self, keys: list[str]) -> None:
        # raising keeps the media records (and so the keys) for the next attempt
        for key in keys:
            self._blobs.delete(key)
