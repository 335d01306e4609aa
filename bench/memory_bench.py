"""Peak memory of the embedded server under sustained overload: the process tree's RSS (server + OTLP decode
helpers), sampled every 50 ms while load generators run at once.

usage: python bench/memory_bench.py [--mix overload|otlp-large|otlp] [--seconds 45] [--env K=V ...]

Mixes (the shared load generators in ../shared/bench, started together):
* ``otlp``:       8 OTLP clients, 25 traces (100 spans) per request - normal OTLP load;
* ``otlp-large``: 64 OTLP clients, 100 traces (400 spans) per request;
* ``overload``:   64 batch-API clients with 50 traces per request and 16 OTLP clients (25 traces) at once.
The load generators are stopped after ``--seconds`` (they are given more work than that); 503s are expected
under overload (counted by the generators as bad status / errors, and by the server's /metrics). Run the
server of another checkout with ``PYTHONPATH=<its root>``. Never run by the tests.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from ingest_bench import ROOT, children, free_port, rss_mb
from prometheus_client.parser import text_string_to_metric_families

MIXES = {
    "otlp": [("otlp", 8, 25, 40_000)],
    "otlp-large": [("otlp", 64, 100, 40_000)],
    "overload": [("batch", 64, 50, 16_000), ("otlp", 16, 25, 24_000)],
}
AUTH = "pk-lf-bench:sk-lf-bench"
# ../shared/bench next to the main checkout, or two levels up from a worktree under /work/wt/<name>
SHARED_BENCH = next(
    (p for p in (ROOT.parent / "shared" / "bench", ROOT.parent.parent / "shared" / "bench") if p.is_dir()),
    ROOT.parent / "shared" / "bench",
)


class TreeRss(threading.Thread):
    """Peak RSS (MiB) of the server, of its helpers, and of both together, sampled every 50 ms."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.halt = threading.Event()
        self.peak_tree = self.peak_server = self.peak_helpers = 0.0
        self.max_helpers = 0

    def run(self) -> None:
        while not self.halt.wait(0.05):
            try:
                server = rss_mb(self.pid)
                helpers = children(self.pid)
                helper_rss = sum(rss_mb(c) for c in helpers)
            except (OSError, ValueError):  # a helper ended between listing and reading
                continue
            self.peak_server = max(self.peak_server, server)
            self.peak_helpers = max(self.peak_helpers, helper_rss)
            self.peak_tree = max(self.peak_tree, server + helper_rss)
            self.max_helpers = max(self.max_helpers, len(helpers))


def generator(kind: str, url: str, conc: int, per_request: int, traces: int) -> list[str]:
    if kind == "otlp":
        return [
            sys.executable,
            str(SHARED_BENCH / "otlp_load.py"),
            url + "/api/public/otel/v1/traces",
            "--traces",
            str(traces),
            "--batch",
            str(per_request),
            "--conc",
            str(conc),
            "--auth",
            AUTH,
        ]
    return [
        sys.executable,
        str(SHARED_BENCH / "ingest_load.py"),
        url,
        "--auth",
        AUTH,
        "--traces",
        str(traces),
        "--traces-per-request",
        str(per_request),
        "--conc",
        str(conc),
    ]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mix", choices=sorted(MIXES), default="overload")
    ap.add_argument("--seconds", type=float, default=45)
    ap.add_argument("--env", action="append", default=[], help="K=V for the server (e.g. a bound)")
    a = ap.parse_args()

    data = Path(tempfile.mkdtemp(prefix="lightfuse-membench-"))
    port = free_port()
    env = dict(
        os.environ,
        PORT=str(port),
        HOSTNAME="127.0.0.1",
        LIGHTFUSE_DATA_DIR=str(data / "data"),
        LANGFUSE_INIT_ORG_ID="bench",
        LANGFUSE_INIT_PROJECT_ID="bench",
        LANGFUSE_INIT_PROJECT_PUBLIC_KEY="pk-lf-bench",
        LANGFUSE_INIT_PROJECT_SECRET_KEY="sk-lf-bench",
        LANGFUSE_LOG_LEVEL="warning",
        LIGHTFUSE_SHUTDOWN_DELAY_SECONDS="0",
    )
    for k in ("DATABASE_URL", "SALT"):
        env.pop(k, None)
    env.update(kv.split("=", 1) for kv in a.env)
    # cwd outside any checkout: `python -m` puts the cwd first on sys.path, ahead of PYTHONPATH
    server = subprocess.Popen([sys.executable, "-m", "lightfuse.cli", "serve"], env=env, cwd=data)
    url = f"http://127.0.0.1:{port}"
    loads: list[subprocess.Popen] = []
    try:
        for _ in range(300):
            try:
                if httpx.get(url + "/api/public/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        time.sleep(2)
        idle = rss_mb(server.pid)
        sampler = TreeRss(server.pid)
        sampler.start()
        logs = []
        for kind, conc, per_request, traces in MIXES[a.mix]:
            log = tempfile.TemporaryFile()
            logs.append((kind, conc, per_request, log))
            loads.append(
                subprocess.Popen(
                    generator(kind, url, conc, per_request, traces), stdout=log, stderr=subprocess.STDOUT
                )
            )
        deadline = time.monotonic() + a.seconds
        while time.monotonic() < deadline and any(p.poll() is None for p in loads):
            time.sleep(0.2)
        for p in loads:  # bounded: whatever work is left is dropped
            if p.poll() is None:
                p.terminate()
            p.wait(30)
        time.sleep(1)
        sampler.halt.set()
        sampler.join()
        metrics = httpx.get(url + "/metrics", timeout=30).text
        refusals = stored = 0.0
        for family in text_string_to_metric_families(metrics):
            for s in family.samples:
                if s.name == "lightfuse_ingestion_refusals_total":
                    refusals += s.value
                if s.name == "lightfuse_ingestion_events_total" and s.labels.get("result") == "stored":
                    stored += s.value
        print(f"mix={a.mix} seconds={a.seconds:g} server_env={' '.join(a.env) or '-'}")
        for kind, conc, per_request, log in logs:
            log.seek(0)
            tail = log.read().decode(errors="replace").strip().splitlines()[-2:]
            print(
                f"  {kind} x{conc} ({per_request} traces/request): {' | '.join(tail) or '(stopped at deadline)'}"
            )
        print(
            f"idle_rss_mib={idle:.1f} peak_tree_rss_mib={sampler.peak_tree:.1f} "
            f"peak_server_rss_mib={sampler.peak_server:.1f} peak_helpers_rss_mib={sampler.peak_helpers:.1f} "
            f"helpers={sampler.max_helpers} refused_requests_503={refusals:.0f} events_stored={stored:.0f}"
        )
    finally:
        for p in loads:
            if p.poll() is None:
                p.kill()
        server.terminate()
        server.wait(60)
        shutil.rmtree(data, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
