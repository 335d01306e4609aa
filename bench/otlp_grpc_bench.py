"""OTLP over gRPC against OTLP/HTTP on one embedded server: the same export payloads (otlp_load.py's traces, 4
spans each) sent over each protocol in turn by ``--conc`` threads, every call waited for (as an SDK's batch
exporter does), then the stored observation count checked against what was acknowledged.

usage: python bench/otlp_grpc_bench.py [--requests N] [--batch K] [--conc C] [--rounds R]
Prints spans/s and p50/p99 call latency per protocol and round. Never run by the tests.
"""

from __future__ import annotations

import argparse
import base64
import os
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import grpc
import httpx
import otlp_stages  # bench/ is the script's directory, so its modules import as top-level

from lightfuse.api.otlp_grpc import EXPORT_METHOD

AUTH = "Basic " + base64.b64encode(b"pk-lf-bench:sk-lf-bench").decode()
SPANS_PER_TRACE = 4


def payloads(requests: int, batch: int) -> list[bytes]:
    # the shared load generator sits next to the checkout (a worktree may sit one level deeper)
    if not otlp_stages.LOAD_GENERATOR.exists():
        for parent in Path(__file__).resolve().parents:
            candidate = parent / "shared" / "bench" / "otlp_load.py"
            if candidate.exists():
                otlp_stages.LOAD_GENERATOR = candidate
                break
    return otlp_stages.payloads(requests, batch)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def drive(send, bodies: list[bytes], conc: int) -> tuple[float, list[float]]:
    """Send every body once from ``conc`` threads; (seconds, per-call latencies)."""
    latencies: list[float] = []
    lock = threading.Lock()
    queue = list(bodies)

    def worker() -> None:
        while True:
            with lock:
                if not queue:
                    return
                body = queue.pop()
            started = time.perf_counter()
            send(body)
            with lock:
                latencies.append(time.perf_counter() - started)

    threads = [threading.Thread(target=worker) for _ in range(conc)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - started, sorted(latencies)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=400)
    ap.add_argument("--batch", type=int, default=25, help="traces per export")
    ap.add_argument("--conc", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=2)
    a = ap.parse_args()

    data = Path(tempfile.mkdtemp(prefix="lightfuse-grpc-bench-"))
    port, grpc_port = free_port(), free_port()
    env = dict(
        os.environ,
        PORT=str(port),
        HOSTNAME="127.0.0.1",
        LIGHTFUSE_DATA_DIR=str(data),
        LIGHTFUSE_OTLP_GRPC_PORT=str(grpc_port),
        LANGFUSE_INIT_ORG_ID="bench",
        LANGFUSE_INIT_PROJECT_ID="bench",
        LANGFUSE_INIT_PROJECT_PUBLIC_KEY="pk-lf-bench",
        LANGFUSE_INIT_PROJECT_SECRET_KEY="sk-lf-bench",
        LANGFUSE_LOG_LEVEL="warning",
        LIGHTFUSE_SHUTDOWN_DELAY_SECONDS="0",
    )
    for k in ("DATABASE_URL", "SALT"):
        env.pop(k, None)
    server = subprocess.Popen([sys.executable, "-m", "lightfuse.cli", "serve"], env=env)
    url = f"http://127.0.0.1:{port}"
    acknowledged = 0
    try:
        for _ in range(300):
            try:
                if httpx.get(url + "/api/public/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        http = httpx.Client(
            headers={"Authorization": AUTH, "Content-Type": "application/x-protobuf"},
            limits=httpx.Limits(max_connections=a.conc),
            timeout=60,
        )
        channel = grpc.insecure_channel(f"127.0.0.1:{grpc_port}")
        export = channel.unary_unary(EXPORT_METHOD)

        def over_http(body: bytes) -> None:
            r = http.post(url + "/api/public/otel/v1/traces", content=body)
            assert r.status_code == 200, r.text

        def over_grpc(body: bytes) -> None:
            export(body, metadata=(("authorization", AUTH),), timeout=60)

        for round_no in range(a.rounds):
            for name, send in (("http", over_http), ("grpc", over_grpc)):
                bodies = payloads(a.requests, a.batch)  # fresh trace ids every time
                seconds, lat = drive(send, bodies, a.conc)
                spans = a.requests * a.batch * SPANS_PER_TRACE
                acknowledged += spans
                p50, p99 = lat[len(lat) // 2], lat[min(len(lat) - 1, int(len(lat) * 0.99))]
                print(
                    f"round {round_no + 1} {name:4}: {spans / seconds:8.0f} spans/s  "
                    f"p50 {p50 * 1000:6.1f} ms  p99 {p99 * 1000:6.1f} ms  ({a.requests} exports of "
                    f"{a.batch * SPANS_PER_TRACE} spans, {a.conc} at once)"
                )
        channel.close()
        http.close()
    finally:
        server.terminate()
        server.wait(60)
    with sqlite3.connect(data / "lightfuse.db") as db:
        stored = db.execute("select count(*) from observations").fetchone()[0]
    print(f"acknowledged {acknowledged} spans, stored {stored} observations")
    return 0 if stored == acknowledged else 1


if __name__ == "__main__":
    sys.exit(main())
