"""Ingestion benchmark on the embedded store: starts `lightfuse serve` on a fresh data dir, measures idle RSS,
runs ../shared/bench/ingest_load.py (or otlp_load.py with --otlp) against it, then checks that every event
the load generator counted as accepted is stored.

usage: python bench/ingest_bench.py [--traces N] [--traces-per-request K] [--conc C] [--otlp]
Prints the load generator's figures plus idle/peak RSS, the server's CPU seconds during the load (its helper
processes' RSS and CPU apart) and the stored row counts. Never run by the tests.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from otlp_stages import payloads  # bench/ is the script's directory, so its modules import as top-level

ROOT = Path(__file__).resolve().parent.parent
SHARED_BENCH = ROOT.parent / "shared" / "bench"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU the process has used so far."""
    return cpu_seconds_of(Path(f"/proc/{pid}/stat"))


def cpu_by_thread(pid: int) -> dict[str, float]:
    """CPU seconds so far per thread name: the server names its writer and WAL checkpointer for the OS
    (lightfuse.runtime.name_os_thread); every other thread (event loop, decode results) keeps the process's."""
    out: dict[str, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            out[name] = out.get(name, 0.0) + cpu_seconds_of(task / "stat")
        except OSError:  # the thread ended meanwhile
            continue
    return out


def cpu_seconds_of(stat: Path) -> float:
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, summed over its cores (/proc/stat)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    total = sum(fields[:8])  # guest time is already counted in user
    tick = os.sysconf("SC_CLK_TCK")
    return (total - idle) / tick, total / tick


class LoadWindowSampler(threading.Thread):
    """Samples the machine's CPU every 100 ms while the server works (its CPU time grows): the load generator
    first spends seconds building its requests, which must not count as serving."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self._pid = pid
        self._halt = threading.Event()
        self._window: list[tuple[float, float]] = []

    def run(self) -> None:
        last_cpu = cpu_seconds(self._pid)
        previous = machine_busy_seconds()
        while not self._halt.wait(0.1):
            now_cpu, sample = cpu_seconds(self._pid), machine_busy_seconds()
            if now_cpu - last_cpu > 0.03:  # the server used >30% of a core in this interval
                self._window.append((sample[0] - previous[0], sample[1] - previous[1]))
            last_cpu, previous = now_cpu, sample

    def stop(self) -> None:
        self._halt.set()
        self.join()

    def busy_fraction(self) -> float:
        total = sum(t for _, t in self._window)
        return sum(b for b, _ in self._window) / total if total else 0.0


def children(pid: int) -> list[int]:
    """The server's helper processes (the OTLP decode pool): their CPU and memory count as the server's."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(c) for c in path.read_text().split()] if path.exists() else []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--traces", type=int, default=20000)
    ap.add_argument("--traces-per-request", type=int, default=10)
    ap.add_argument("--batch", type=int, default=25, help="traces per OTLP request")
    ap.add_argument("--conc", type=int, default=8)
    ap.add_argument("--otlp", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the data dir (its path is printed)")
    a = ap.parse_args()

    data = Path(tempfile.mkdtemp(prefix="lightfuse-bench-"))
    print("data dir:", data)
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
    )
    for k in ("DATABASE_URL", "SALT"):
        env.pop(k, None)
    server = subprocess.Popen([sys.executable, "-m", "lightfuse.cli", "serve"], env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(url + "/api/public/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        time.sleep(2)
        idle = rss_mb(server.pid)
        if a.otlp:
            cmd = [
                sys.executable,
                str(SHARED_BENCH / "otlp_load.py"),
                url + "/api/public/otel/v1/traces",
                "--traces",
                str(a.traces),
                "--batch",
                str(a.batch),
                "--conc",
                str(a.conc),
                "--auth",
                "pk-lf-bench:sk-lf-bench",
            ]
        else:
            cmd = [
                sys.executable,
                str(SHARED_BENCH / "ingest_load.py"),
                url,
                "--auth",
                "pk-lf-bench:sk-lf-bench",
                "--traces",
                str(a.traces),
                "--traces-per-request",
                str(a.traces_per_request),
                "--conc",
                str(a.conc),
            ]
        print("load:", " ".join(cmd[1:]))
        helpers_before = {c: cpu_seconds(c) for c in children(server.pid)}
        cpu_before = cpu_seconds(server.pid)
        threads_before = cpu_by_thread(server.pid)
        load_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        sampler = LoadWindowSampler(server.pid)
        sampler.start()
        subprocess.run(cmd, check=True)
        sampler.stop()
        load_after = resource.getrusage(resource.RUSAGE_CHILDREN)
        load_cpu = (load_after.ru_utime + load_after.ru_stime) - (load_before.ru_utime + load_before.ru_stime)
        server_cpu = cpu_seconds(server.pid) - cpu_before
        threads = {
            name: cpu - threads_before.get(name, 0.0) for name, cpu in cpu_by_thread(server.pid).items()
        }
        helpers = children(server.pid)
        helper_cpu = sum(cpu_seconds(c) - helpers_before.get(c, 0.0) for c in helpers)
        peak = rss_mb(server.pid)
        helper_rss = sum(rss_mb(c) for c in helpers)
        db = sqlite3.connect(data / "data" / "lightfuse.db")
        counts = {
            t: db.execute(f"select count(*) from {t}").fetchone()[0]
            for t in ("traces", "observations", "scores", "ingestion_events")
        }
        print(
            f"idle_rss_mb={idle:.1f} rss_after_load_mb={peak:.1f} server_cpu_s={server_cpu:.2f} "
            f"helper_processes={len(helpers)} helper_rss_mb={helper_rss:.1f} helper_cpu_s={helper_cpu:.2f}"
        )
        busiest_first = sorted(threads.items(), key=lambda item: -item[1])
        print("server_cpu_by_thread_s:", " ".join(f"{n}={c:.2f}" for n, c in busiest_first if c >= 0.01))
        # with everything on one machine, how busy its cores were says whether the run was CPU-bound
        print(
            f"load_generator_cpu_s={load_cpu:.2f} (with building its requests) "
            f"machine_busy_while_serving={sampler.busy_fraction():.0%} of {os.cpu_count()} cores"
        )
        print("stored:", " ".join(f"{k}={v}" for k, v in counts.items()))
        if a.otlp:
            # what the load generator spends building its requests before it sends any, timed here apart, so
            # that its CPU while the server worked is the figure above less this one
            start = time.process_time()
            payloads(a.traces // a.batch, a.batch)
            print(f"load_generator_build_cpu_s={time.process_time() - start:.2f} (timed apart)")
    finally:
        server.terminate()
        server.wait()
        if not a.keep:
            shutil.rmtree(data, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
