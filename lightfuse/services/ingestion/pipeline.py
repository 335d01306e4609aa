"""The ingestion writer: durable before acknowledged, fast by group commit.

Request handlers validate events and ``submit`` them. One writer thread drains every submission waiting at
that moment into ONE transaction: merge each touched entity, enrich observations with usage and cost, upsert
the rows, append the raw events to the event log, commit - and only then resolve the handlers' futures. So an
acknowledged event is on disk and readable at once, and concurrent requests share the cost of a commit.

Merging: events newer than everything already folded into a row are folded onto the stored row (the common
case). An event older than the row's newest event makes the writer replay the entity's whole event log, which
gives the same result as if the events had arrived in timestamp order.

Several server processes may share one Postgres database, each with its own writer; they give the rows one
process would. The store locks the stored rows the writer reads until it commits, hands back the entities
another writer created meanwhile (they are merged again onto that row, in the same transaction), and a
transaction that Postgres aborts as a deadlock or serialization failure is run again before anything is
acknowledged.

Contract: ``submit`` raises ``IntakeFull`` (answer 503 + Retry-After) instead of queueing without bound; it
returns per-event failures (event id -> message) for events that could not be stored, which only happens on
an unexpected storage error. A commit that fails for lack of space fails its submissions with ``StoreFull``
(answer 503 + Retry-After for the whole request) and marks ``health`` full until a commit succeeds again.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine

from lightfuse.runtime import name_os_thread
from lightfuse.services.common.clock import now_ms
from lightfuse.services.common.rows import EntityKind
from lightfuse.services.ingestion.entity_merge import log_body, merge_entity, needs_replay
from lightfuse.services.ingestion.events import ValidEvent
from lightfuse.services.ingestion.storage_health import StorageHealth
from lightfuse.services.operations.metrics import BatchTally, OpsMetrics
from lightfuse.services.pricing.price_book import observation_enrichment
from lightfuse.store.capacity import StoreFull, disk_full_as_store_full
from lightfuse.store.sql.database import WalCheckpointer, is_retryable_conflict, writer_connection
from lightfuse.store.sql.tracing import writes as tw
from lightfuse.store.sql.tracing.score_configs import get_score_config

log = logging.getLogger(__name__)

MAX_EVENTS_PER_COMMIT = 5_000
# how often a commit deadlocked by another process's writer (several servers on one Postgres) is run again
_CONFLICT_ATTEMPTS = 8
# merge rounds per kind and commit: a second when another writer created an entity meanwhile, a third only if
# that row was then deleted and created again
_MERGE_ROUNDS = 4


class IntakeFull(Exception):
    """The writer is behind by more than the configured number of events (``reason`` "queue_full"), or the
    pipeline is stopping ("shutting_down")."""

    def __init__(self, message: str, reason: str = "queue_full") -> None:
        super().__init__(message)
        self.reason = reason


@dataclass
class _Submission:
    project_id: str
    events: list[ValidEvent]
    future: Future = field(default_factory=Future)


class IngestionPipeline:
    def __init__(
        self,
        engine: Engine,
        price_books: Callable[[Any, str], Any],
        max_pending_events: int = 200_000,
        on_commit: Callable[[int], None] | None = None,
        health: StorageHealth | None = None,
        metrics: OpsMetrics | None = None,
    ) -> None:
        self._engine = engine
        self._price_books = price_books
        self._max_pending = max_pending_events
        self._on_commit = on_commit
        self._health = health
        self._metrics = metrics
        # monotonic time of the last successful commit (None before the first): /api/public/health reads it
        self.last_commit_monotonic: float | None = None
        self._queue: deque[_Submission] = deque()
        self._pending_events = 0
        self._cond = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._checkpointer = WalCheckpointer(engine)
        self._conn: Connection | None = None  # the writer thread's own connection

    # --- lifecycle ------------------------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is None:
            self._checkpointer.start()
            self._thread = threading.Thread(target=self._run, name="lightfuse-writer", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Finish every queued submission, then stop the writer."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._checkpointer.stop()

    @property
    def pending_events(self) -> int:
        return self._pending_events

    # --- intake ---------------------------------------------------------------------------------------------

    def submit_nowait(self, project_id: str, events: list[ValidEvent]) -> Future:
        sub = _Submission(project_id, events)
        if not events:
            sub.future.set_result({})
            return sub.future
        with self._cond:
            if self._stopping:
                raise IntakeFull("shutting down", "shutting_down")
            if self._pending_events + len(events) > self._max_pending and self._pending_events > 0:
                raise IntakeFull(f"{self._pending_events} events are waiting to be written")
            self._queue.append(sub)
            self._pending_events += len(events)
            self._cond.notify()
        return sub.future

    async def submit(self, project_id: str, events: list[ValidEvent]) -> dict[str, str]:
        return await asyncio.wrap_future(self.submit_nowait(project_id, events))

    def submit_sync(self, project_id: str, events: list[ValidEvent]) -> dict[str, str]:
        return self.submit_nowait(project_id, events).result()

    # --- writer ---------------------------------------------------------------------------------------------

    def _take(self) -> list[_Submission] | None:
        with self._cond:
            while not self._queue and not self._stopping:
                self._cond.wait()
            if not self._queue:
                return None
            taken: list[_Submission] = []
            count = 0
            while self._queue and (not taken or count + len(self._queue[0].events) <= MAX_EVENTS_PER_COMMIT):
                sub = self._queue.popleft()
                taken.append(sub)
                count += len(sub.events)
            return taken

    def _run(self) -> None:
        name_os_thread("lf-writer")
        try:
            while True:
                taken = self._take()
                if taken is None:
                    return
                self._write(taken)
        finally:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _write(self, taken: list[_Submission]) -> None:
        started = time.perf_counter()
        try:
            tally = self._commit(taken)
            self._record_commit(started, taken, tally)
            results: list[tuple[_Submission, dict[str, str] | StoreFull]] = [(s, {}) for s in taken]
        except StoreFull as exc:  # no point in retrying one by one: every commit needs space
            log.warning("group commit of %d submissions failed, the store is full: %s", len(taken), exc)
            results = [(s, exc) for s in taken]
        except Exception:
            log.exception("group commit of %d submissions failed; retrying one by one", len(taken))
            results = [(s, self._commit_alone(s)) for s in taken]
        if self._checkpointer.truncate_wanted.is_set() and self._conn is not None:
            # the WAL outgrew its bound; between two commits is the one moment this writer holds no lock
            try:
                self._checkpointer.truncate(self._conn)
            except Exception:
                log.exception("WAL truncation failed; retried after the next commit")
        count = sum(len(s.events) for s in taken)
        with self._cond:
            self._pending_events -= count
        if self._on_commit is not None:
            self._on_commit(count)
        if self._health is not None:
            if any(isinstance(failures, StoreFull) for _, failures in results):
                self._health.record_full()
            elif not any(failures for _, failures in results):  # another failure says nothing about space
                self._health.record_written()
        for sub, failures in results:
            if sub.future.done():
                continue
            if isinstance(failures, StoreFull):
                sub.future.set_exception(failures)
            else:
                sub.future.set_result(failures)

    def _commit_alone(self, sub: _Submission) -> dict[str, str] | StoreFull:
        started = time.perf_counter()
        try:
            self._record_commit(started, [sub], self._commit([sub]))
            return {}
        except StoreFull as exc:
            return exc
        except Exception:
            log.exception("a submission of %d events could not be stored", len(sub.events))
            if self._metrics is not None:
                self._metrics.commits.labels("failed").inc()
                self._metrics.count_events(_count_types(sub.events), "failed")
            return {e.id: "Internal Server Error" for e in sub.events}

    def _record_commit(self, started: float, subs: list[_Submission], tally: BatchTally) -> None:
        self.last_commit_monotonic = time.monotonic()
        if self._metrics is not None:
            count = sum(len(s.events) for s in subs)
            now = now_ms()
            lags = [max(0.0, (now - newest) / 1000) for newest in tally.newest_event_ms.values()]
            self._metrics.record_commit(time.perf_counter() - started, count, tally, lags)

    def _commit(self, subs: list[_Submission]) -> BatchTally:
        """One transaction for ``subs``; returns what it stored, for the metrics (applied only after commit)."""
        by_project: dict[str, list[ValidEvent]] = defaultdict(list)
        for sub in subs:
            by_project[sub.project_id].extend(sub.events)
        for attempt in range(1, _CONFLICT_ATTEMPTS + 1):
            try:
                return self._commit_once(by_project)
            except Exception as exc:
                # another process's writer on the same Postgres deadlocked this transaction: run it again (it
                # rolled back whole, nothing was acknowledged); a short random pause lets the two drift apart
                if attempt == _CONFLICT_ATTEMPTS or not is_retryable_conflict(exc):
                    raise
                log.info("commit conflicted with another writer (attempt %d): %s", attempt, exc)
                time.sleep(random.uniform(0.0, 0.02 * attempt))
        raise AssertionError("unreachable")  # the last attempt returns or raises

    def _commit_once(self, by_project: dict[str, list[ValidEvent]]) -> BatchTally:
        tally = BatchTally()  # a fresh one per attempt: a rolled-back attempt's counts go with it
        if self._conn is None:
            self._conn = writer_connection(self._engine)
        conn = self._conn
        try:
            # a writer_connection begins with the write lock on SQLite: the commit reads stored rows before it
            # writes, and another connection's commit in between would otherwise fail the upgrade at once
            with disk_full_as_store_full(), conn.begin():
                for project_id in sorted(by_project):  # one order for all writers: see tw.get_rows
                    self._write_project(conn, project_id, by_project[project_id], tally)
        except Exception:
            # a broken connection must not poison the next commit
            self._conn = None
            conn.close()
            raise
        return tally

    def _write_project(self, conn, project_id: str, events: list[ValidEvent], tally: BatchTally) -> None:
        now = now_ms()
        groups: dict[EntityKind, dict[str, list[ValidEvent]]] = {"trace": {}, "observation": {}, "score": {}}
        type_counts = tally.events
        newest = 0
        for ev in events:
            type_counts[ev.type] += 1
            if ev.timestamp > newest:
                newest = ev.timestamp
            entity_id = ev.entity_id
            if entity_id is None:
                if ev.kind != "score":
                    continue  # a trace-create without body.id is acknowledged and discarded, as in Langfuse
                entity_id = str(uuid.uuid4())
                ev = _with_entity_id(ev, entity_id)
            groups[ev.kind].setdefault(entity_id, []).append(ev)
        tally.newest_event_ms[project_id] = max(newest, tally.newest_event_ms.get(project_id, 0))

        sessions: dict[str, dict] = {}
        log_rows: list[dict] = []
        get_config = _config_lookup(conn, project_id)
        for kind, by_entity in groups.items():
            # Entities another process's writer created while this one merged them come back (on Postgres;
            # never on SQLite) and are merged again onto that row: once, as a rule.
            for _ in range(_MERGE_ROUNDS):
                if not by_entity:
                    break
                by_entity = self._merge_kind(
                    conn, project_id, kind, by_entity, now, get_config, sessions, log_rows, tally
                )
            if by_entity:
                raise RuntimeError(f"{len(by_entity)} {kind} rows kept changing under concurrent writers")
        # The log is keyed by the entity row's created_at (see tables.ingestion_events): the stored row's for a
        # known entity, this commit's time - which the merge gives a new row - for a new one. It is written
        # after the rows, once it is settled which process created each entity; a replay above reads the events
        # logged before this commit and takes this commit's from ``evs``.
        tw.insert_events(conn, log_rows)
        tw.ensure_sessions(conn, list(sessions.values()))

    def _merge_kind(
        self,
        conn,
        project_id: str,
        kind: EntityKind,
        by_entity: dict[str, list[ValidEvent]],
        now: int,
        get_config: Callable[[str], dict | None],
        sessions: dict[str, dict],
        log_rows: list[dict],
        tally: BatchTally,
    ) -> dict[str, list[ValidEvent]]:
        """Merge and write one kind's entities; returns those to merge again (see tw.write_entity_rows)."""
        stored = tw.get_rows(conn, kind, project_id, list(by_entity))
        replay_keys = []
        if stored:  # only an entity with a stored row can need a replay (under OTLP load most are new)
            replay_keys = [
                (stored[eid]["created_at"], eid)
                for eid, evs in by_entity.items()
                if needs_replay(stored.get(eid), evs)
            ]
        history = tw.list_entity_events(conn, project_id, kind, replay_keys) if replay_keys else {}
        for _, eid in replay_keys:
            history.setdefault(eid, [])  # a replay even with nothing logged before: of this commit's events
        rows = []
        book = self._price_books(conn, project_id) if kind == "observation" else None
        for eid, evs in by_entity.items():
            logged = history.get(eid)
            row = merge_entity(
                kind,
                stored.get(eid),
                evs,
                [_event_from_log(r, kind) for r in logged] if logged is not None else None,
                project_id,
                now,
                get_config,
            )
            if row is None:
                continue
            if kind == "observation" and book is not None:
                row.update(observation_enrichment(row, book))  # the merge's row is ours: no copy needed
            elif kind == "trace" and row.get("session_id"):
                sessions[row["session_id"]] = {
                    "project_id": project_id,
                    "id": row["session_id"],
                    "environment": row.get("environment", "default"),
                    "bookmarked": False,
                    "public": False,
                    "created_at": now,
                }
            rows.append(row)
        again = tw.write_entity_rows(conn, kind, rows, _Unstored(stored))
        if kind == "observation":  # for the metrics: what this round wrote (one merged again is counted then)
            for row in rows:
                if not (again and row["id"] in again):
                    tally.add_observation(project_id, row, stored.get(row["id"]))
        for eid, evs in by_entity.items():
            if again and eid in again:
                continue
            row = stored.get(eid)
            created_at = row["created_at"] if row is not None else now
            for ev in evs:
                log_rows.append(
                    {
                        "project_id": project_id,
                        "entity_kind": kind,
                        "entity_created_at": created_at,
                        "entity_id": eid,
                        "event_id": ev.id,
                        "event_type": ev.type,
                        "event_ts": ev.timestamp,
                        "body": log_body(ev.body),
                        "received_at": now,
                    }
                )
        return {eid: by_entity[eid] for eid in again} if again else {}


class _Unstored:
    """The ids without a stored row, as a container (a set would be built per commit for nothing on SQLite)."""

    __slots__ = ("_stored",)

    def __init__(self, stored: dict[str, dict]) -> None:
        self._stored = stored

    def __contains__(self, entity_id: object) -> bool:
        return entity_id not in self._stored


def _count_types(events: list[ValidEvent]) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for ev in events:
        counts[ev.type] += 1
    return counts


def _config_lookup(conn, project_id: str) -> Callable[[str], dict | None]:
    """Score-config reads for one commit, each config read once."""
    configs: dict[str, dict | None] = {}

    def get_config(config_id: str) -> dict | None:
        if config_id not in configs:
            configs[config_id] = get_score_config(conn, project_id, config_id)
        return configs[config_id]

    return get_config


def _with_entity_id(ev: ValidEvent, entity_id: str) -> ValidEvent:
    body = dict(ev.body)
    body["id"] = entity_id
    return ValidEvent(
        id=ev.id,
        type=ev.type,
        timestamp=ev.timestamp,
        kind=ev.kind,
        entity_id=entity_id,
        body=body,
        observation_type=ev.observation_type,
    )


def _event_from_log(row: dict, kind: EntityKind) -> ValidEvent:
    return ValidEvent(
        id=row["event_id"],
        type=row["event_type"],
        timestamp=row["event_ts"],
        kind=kind,
        entity_id=row["entity_id"],
        body=row["body"],
        observation_type=_observation_type(row["event_type"], row["body"]) if kind == "observation" else None,
    )


def _observation_type(event_type: str, body: dict) -> str:
    """The observation type an event of the log stands for: legacy events carry it in the body."""
    if event_type.startswith("observation-"):
        return str(body.get("type") or "SPAN")
    return event_type.rsplit("-", 1)[0].upper()
