"""Fault tests on a real server process: every acknowledged event is stored, whatever happens to the server.

- SIGKILL under ingestion load: what was acknowledged was committed before the 207 went out.
- Overload with a small intake queue: requests beyond it get 503 + Retry-After as a whole, the rest are stored.
(The full disk is tests/e2e/test_disk_full.py.) Each test prints its counts (run with -s) and records them as
junit properties: acknowledged, stored, rejected.
"""

from __future__ import annotations

import signal
import threading
import time
import uuid

import httpx
import pytest

from tests.conftest import make_server

pytestmark = pytest.mark.slow


def _batch(n: int) -> list[dict]:
    events = []
    for _ in range(n):
        trace_id = str(uuid.uuid4())
        events.append(
            {
                "id": str(uuid.uuid4()),
                "type": "trace-create",
                "timestamp": "2026-01-01T00:00:00.000Z",
                "body": {"id": trace_id, "name": "durable", "input": "x" * 500},
            }
        )
        events.append(
            {
                "id": str(uuid.uuid4()),
                "type": "span-create",
                "timestamp": "2026-01-01T00:00:00.100Z",
                "body": {"id": str(uuid.uuid4()), "traceId": trace_id, "name": "step"},
            }
        )
    return events


class Tally:
    """What the clients saw: entity ids whose events were acknowledged, and the events refused."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.traces: set[str] = set()
        self.spans: set[str] = set()
        self.rejected = 0  # events of requests answered 503 + Retry-After
        self.lost_answers = 0  # events of requests without an answer (the server died mid-request)
        self.other: list[str] = []  # anything else: a failure of the test

    def record(self, batch: list[dict], response: httpx.Response | None) -> None:
        with self.lock:
            if response is None:
                self.lost_answers += len(batch)
            elif response.status_code == 503 and response.headers.get("Retry-After"):
                self.rejected += len(batch)
            elif response.status_code == 207 and not response.json()["errors"]:
                ok = {s["id"] for s in response.json()["successes"]}
                for ev in batch:
                    if ev["id"] in ok:
                        (self.traces if ev["type"] == "trace-create" else self.spans).add(ev["body"]["id"])
            else:
                self.other.append(f"{response.status_code} {response.text[:200]}")

    @property
    def acknowledged(self) -> int:
        return len(self.traces) + len(self.spans)


def _count_stored(server, tally: Tally) -> int:
    """How many of the acknowledged traces and spans the server has (each fetched by id)."""
    stored = 0
    with httpx.Client(base_url=server.url, auth=server.auth, timeout=30) as c:
        for trace_id in tally.traces:
            stored += c.get(f"/api/public/traces/{trace_id}").status_code == 200
        for span_id in tally.spans:
            stored += c.get(f"/api/public/observations/{span_id}").status_code == 200
    return stored


def _report(record_property, name: str, tally: Tally, stored: int) -> None:
    line = (
        f"FAULT {name}: acknowledged={tally.acknowledged} stored={stored} rejected={tally.rejected}"
        f" unanswered={tally.lost_answers}"
    )
    print("\n" + line)
    record_property(f"fault_{name.split()[0]}", line)


def test_sigkill_loses_no_acknowledged_event(tmp_path, backend, record_property):
    server = make_server(tmp_path, backend)
    server.start()
    tally = Tally()
    stop = threading.Event()

    def client() -> None:
        with httpx.Client(base_url=server.url, auth=server.auth, timeout=10) as c:
            while not stop.is_set():
                batch = _batch(20)
                try:
                    r = c.post("/api/public/ingestion", json={"batch": batch})
                except httpx.HTTPError:
                    r = None  # the server died mid-request: nothing was acknowledged
                tally.record(batch, r)

    threads = [threading.Thread(target=client) for _ in range(4)]
    for t in threads:
        t.start()
    # kill once a good number of batches were acknowledged, while the clients keep sending
    deadline = time.monotonic() + 120
    while len(tally.traces) < 400 and time.monotonic() < deadline:
        time.sleep(0.05)
    server.stop(signal.SIGKILL)
    stop.set()
    for t in threads:
        t.join()
    assert len(tally.traces) >= 400
    assert tally.other == []

    server.start()
    try:
        stored = _count_stored(server, tally)
        _report(
            record_property,
            f"sigkill ({backend.get('database_url') and 'postgres' or 'sqlite'})",
            tally,
            stored,
        )
        assert stored == tally.acknowledged
    finally:
        server.stop()


def test_overload_refuses_with_503_and_stores_every_acknowledged_event(tmp_path, backend, record_property):
    # room for two batches of 40 events waiting for the writer: eight clients at once overflow it
    server = make_server(tmp_path, backend, LIGHTFUSE_INGEST_QUEUE_MAX_EVENTS="80")
    server.start()
    tally = Tally()
    try:

        def client() -> None:
            with httpx.Client(base_url=server.url, auth=server.auth, timeout=30) as c:
                deadline = time.monotonic() + 60
                for _ in range(40):
                    if time.monotonic() > deadline or (tally.rejected and tally.acknowledged >= 2000):
                        return
                    batch = _batch(20)
                    tally.record(batch, c.post("/api/public/ingestion", json={"batch": batch}))

        threads = [threading.Thread(target=client) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert tally.other == []
        assert tally.rejected > 0, "the small intake queue never overflowed"
        assert tally.acknowledged > 0
        stored = _count_stored(server, tally)
        _report(
            record_property,
            f"overload ({backend.get('database_url') and 'postgres' or 'sqlite'}, queue 80 events)",
            tally,
            stored,
        )
        assert stored == tally.acknowledged
    finally:
        server.stop()
