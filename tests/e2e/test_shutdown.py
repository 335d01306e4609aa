"""SIGTERM under ingestion load: readiness turns 503 at once, the process exits 0 on its own, and every event
it acknowledged is stored (read back through the API after a restart)."""

from __future__ import annotations

import datetime as dt
import signal
import threading
import time
import uuid

import httpx
import pytest

from tests.conftest import make_server

pytestmark = pytest.mark.slow

CLIENTS = 4
TRACES_PER_REQUEST = 10
MAX_REQUESTS_PER_CLIENT = 400


def _batch() -> tuple[list[str], dict]:
    now = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    ids = [str(uuid.uuid4()) for _ in range(TRACES_PER_REQUEST)]
    events = []
    for trace_id in ids:
        events.append(
            {
                "id": str(uuid.uuid4()),
                "type": "trace-create",
                "timestamp": now,
                "body": {"id": trace_id, "name": "under-load", "input": "x" * 500},
            }
        )
        events.append(
            {
                "id": str(uuid.uuid4()),
                "type": "generation-create",
                "timestamp": now,
                "body": {
                    "id": str(uuid.uuid4()),
                    "traceId": trace_id,
                    "model": "gpt-4o",
                    "usage": {"input": 10, "output": 5},
                },
            }
        )
    return ids, {"batch": events}


def test_sigterm_under_load_drains_and_exits_cleanly(tmp_path, backend):
    server = make_server(tmp_path, backend, LIGHTFUSE_SHUTDOWN_DELAY_SECONDS="2")
    server.start()
    acknowledged: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def client() -> None:
        with httpx.Client(auth=server.auth, timeout=30) as http:
            for _ in range(MAX_REQUESTS_PER_CLIENT):
                if stop.is_set():
                    return
                ids, batch = _batch()
                try:
                    r = http.post(server.url + "/api/public/ingestion", json=batch)
                except httpx.HTTPError:  # the listener closed: the shutdown went on
                    time.sleep(0.05)
                    continue
                if r.status_code == 207 and len(r.json()["successes"]) == len(batch["batch"]):
                    with lock:
                        acknowledged.extend(ids)

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for t in threads:
        t.start()
    try:
        for _ in range(300):  # until the load is under way
            with lock:
                if len(acknowledged) >= 200:
                    break
            time.sleep(0.05)
        assert httpx.get(server.url + "/api/public/ready").status_code == 200
        process = server.process
        process.send_signal(signal.SIGTERM)
        ready_after_term = None
        for _ in range(40):
            try:
                ready_after_term = httpx.get(server.url + "/api/public/ready", timeout=2)
                break
            except httpx.HTTPError:
                time.sleep(0.05)
        assert ready_after_term is not None and ready_after_term.status_code == 503
        assert ready_after_term.json()["status"] == "Not ready"
        # liveness stays OK during the drain: only readiness takes the instance out
        assert httpx.get(server.url + "/api/public/health", timeout=2).status_code == 200
        returncode = process.wait(timeout=30)  # terminationGracePeriodSeconds' default
        assert returncode == 0, server.log_path.read_text()[-3000:]
    finally:
        stop.set()
        for t in threads:
            t.join(60)
        server.stop()
    assert len(acknowledged) >= 200

    server.start()  # the same data directory or database
    try:
        stored: set[str] = set()
        with httpx.Client(auth=server.auth, timeout=30) as http:
            for page in range(1, 1000):
                r = http.get(server.url + "/api/public/traces", params={"page": page, "limit": 100})
                assert r.status_code == 200, r.text
                data = r.json()["data"]
                stored.update(t["id"] for t in data)
                if len(data) < 100:
                    break
        missing = set(acknowledged) - stored
        assert not missing, f"{len(missing)} of {len(acknowledged)} acknowledged traces were lost"
    finally:
        server.stop()
