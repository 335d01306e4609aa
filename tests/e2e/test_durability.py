"""An acknowledged event survives SIGKILL of the server: it was committed before the 207 went out."""

from __future__ import annotations

import signal
import threading
import uuid

import httpx
import pytest

from tests.conftest import make_server

pytestmark = pytest.mark.slow


def _batch(n: int) -> list[dict]:
    events = []
    for _ in range(n):
        trace_id = str(uuid.uuid4())
        events.append({"id": str(uuid.uuid4()), "type": "trace-create", "timestamp": "2026-01-01T00:00:00.000Z",
                       "body": {"id": trace_id, "name": "durable", "input": "x" * 500}})
        events.append({"id": str(uuid.uuid4()), "type": "span-create", "timestamp": "2026-01-01T00:00:00.100Z",
                       "body": {"id": str(uuid.uuid4()), "traceId": trace_id, "name": "step"}})
    return events


def test_sigkill_loses_no_acknowledged_event(tmp_path, backend):
    server = make_server(tmp_path, backend)
    server.start()
    acked_traces: set[str] = set()
    acked_spans: set[str] = set()
    lock = threading.Lock()
    stop = threading.Event()

    def client() -> None:
        with httpx.Client(base_url=server.url, auth=server.auth, timeout=10) as c:
            while not stop.is_set():
                batch = _batch(20)
                try:
                    r = c.post("/api/public/ingestion", json={"batch": batch})
                except httpx.HTTPError:
                    continue  # the server died mid-request: nothing was acknowledged
                if r.status_code != 207:
                    continue
                ok = {s["id"] for s in r.json()["successes"]}
                with lock:
                    for ev in batch:
                        if ev["id"] in ok:
                            (acked_traces if ev["type"] == "trace-create" else acked_spans).add(ev["body"]["id"])

    threads = [threading.Thread(target=client) for _ in range(4)]
    for t in threads:
        t.start()
    # kill once a good number of batches were acknowledged, while the clients keep sending
    deadline = threading.Event()
    while not deadline.wait(0.05):
        with lock:
            if len(acked_traces) >= 400:
                break
    server.stop(signal.SIGKILL)
    stop.set()
    for t in threads:
        t.join()
    assert len(acked_traces) >= 400

    server.start()
    try:
        with httpx.Client(base_url=server.url, auth=server.auth, timeout=30) as c:
            missing = [tid for tid in acked_traces if c.get(f"/api/public/traces/{tid}").status_code != 200]
            assert missing == []
            total = c.get("/api/public/observations", params={"limit": 1}).json()["meta"]["totalItems"]
            assert total >= len(acked_spans)
    finally:
        server.stop()
