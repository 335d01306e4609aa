"""Server time of the web UI's heavy pages on a large embedded store.

The requirement: with 1,000,000 observations in the embedded store, the traces table's first page and a trace
detail render in < 200 ms server time (p95), the project home in < 500 ms.

1. Builds an embedded SQLite store (in a temp dir, or ``--data-dir`` to reuse one across runs: the load is
   skipped when the store already holds the requested number of observations). The data goes through the real
   writer (``IngestionPipeline.submit_sync`` with validated events, large batches, no HTTP): ``--traces``
   traces of ``--obs-per-trace`` observations each (a root span, generations naming models with usage, child
   spans, a few ERROR/WARNING levels), a score on most traces, users and sessions, spread over ``--days`` days
   up to now. The load time is printed.
2. Serves the app with uvicorn in this process behind a timing ASGI wrapper, signs in through the sign-in form
   as the provisioned project owner, and GETs the traces table (first page), a trace detail and the project
   home (its default time range) ``--requests`` times each, printing p50/p95/p99 of the server time (from the
   ASGI call to the last response byte).

usage: python bench/web_bench.py [--data-dir DIR] [--traces 100000] [--obs-per-trace 10] [--requests 50]
Never run by the tests.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import re
import statistics
import tempfile
import threading
import time
from concurrent.futures import Future
from pathlib import Path

import httpx
import uvicorn
from sqlalchemy import func, select

from lightfuse.app import build_services, create_app
from lightfuse.config import InitSettings, load_settings
from lightfuse.services.ingestion.events import ValidEvent, validate_event
from lightfuse.services.ingestion.pipeline import MAX_EVENTS_PER_COMMIT, IngestionPipeline
from lightfuse.store.sql.tables import observations

PROJECT = "bench"
EMAIL, PASSWORD = "bench-owner@example.com", "bench-password-1"
MODELS = ("gpt-4o", "gpt-4o-mini", "claude-3-5-sonnet-20241022", "gpt-3.5-turbo")
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
DAY_MS = 86_400_000
TARGETS_MS = {"traces table (page 1)": 200, "trace detail": 200, "project home (7d)": 500}


class Timed:
    """ASGI wrapper recording the app's time per HTTP request, keyed by path."""

    def __init__(self, app) -> None:
        self.app = app
        self.samples: dict[str, list[float]] = {}

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        await self.app(scope, receive, send)
        self.samples.setdefault(scope["path"], []).append(time.perf_counter() - start)


def iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def trace_events(rng: random.Random, i: int, ts: int, obs_per_trace: int) -> list[dict]:
    """One trace: a root span, generations and spans under it (``obs_per_trace`` observations), maybe a score."""
    tid = f"tr-{i:07d}"
    user = f"user-{rng.randrange(2000):04d}"
    session = f"sess-{i // 5:06d}"
    ev = []
    n = 0

    def add(kind: str, body: dict, at: int) -> None:
        nonlocal n
        n += 1
        ev.append({"id": f"{tid}-e{n}", "type": kind, "timestamp": iso(at), "body": body})

    add(
        "trace-create",
        {
            "id": tid,
            "timestamp": iso(ts),
            "name": f"flow-{i % 20}",
            "userId": user,
            "sessionId": session,
            "tags": ["bench", f"t{i % 5}"],
            "metadata": {"region": ("eu", "us")[i % 2]},
            "input": {"q": f"question {i}"},
            "output": {"a": f"answer {i}"},
        },
        ts,
    )
    end = ts + 200 * obs_per_trace + 100
    root = f"{tid}-o0"
    add(
        "span-create",
        {"id": root, "traceId": tid, "name": "handle", "startTime": iso(ts), "endTime": iso(end)},
        ts,
    )
    for k in range(1, obs_per_trace):
        start = ts + 200 * k
        stop = start + rng.randrange(50, 3000)
        level = "ERROR" if rng.random() < 0.02 else ("WARNING" if rng.random() < 0.03 else "DEFAULT")
        body = {
            "id": f"{tid}-o{k}",
            "traceId": tid,
            "parentObservationId": root,
            "name": f"step-{k}",
            "startTime": iso(start),
            "endTime": iso(stop),
            "level": level,
        }
        if level != "DEFAULT":
            body["statusMessage"] = "upstream failed"
        if k % 2:
            body.update(
                model=MODELS[(i + k) % len(MODELS)],
                input=[{"role": "user", "content": f"hi {i}"}],
                output={"role": "assistant", "content": "hello"},
                usageDetails={"input": rng.randrange(10, 2000), "output": rng.randrange(5, 500)},
                modelParameters={"temperature": 0.2},
            )
            add("generation-create", body, start)
        else:
            add("span-create", body, start)
    if i % 4 != 3:
        add(
            "score-create",
            {"id": f"{tid}-s", "traceId": tid, "name": "quality", "value": round(rng.random(), 3)},
            end,
        )
    return ev


def load(services, traces: int, obs_per_trace: int, days: int) -> None:
    rng = random.Random(42)
    now = int(time.time() * 1000)
    span = days * DAY_MS
    pipeline = IngestionPipeline(services.engine, services.models.price_book, max_pending_events=10**9)
    pipeline.start()
    started = time.perf_counter()
    batch: list[ValidEvent] = []
    inflight: list[Future] = []
    total = 0
    for i in range(traces):
        ts = now - span + (span * i) // traces + rng.randrange(1000)
        for raw in trace_events(rng, i, ts, obs_per_trace):
            valid = validate_event(raw, "project")
            assert isinstance(valid, ValidEvent), valid
            batch.append(valid)
        if len(batch) >= MAX_EVENTS_PER_COMMIT:
            inflight.append(pipeline.submit_nowait(PROJECT, batch))
            total += len(batch)
            batch = []
            if len(inflight) > 4:  # keep the writer busy while this thread validates the next batch
                assert inflight.pop(0).result() == {}
        if i and i % 10_000 == 0:
            print(f"  {i} traces queued, {time.perf_counter() - started:.0f} s", flush=True)
    if batch:
        inflight.append(pipeline.submit_nowait(PROJECT, batch))
        total += len(batch)
    for f in inflight:
        assert f.result() == {}
    pipeline.stop()
    elapsed = time.perf_counter() - started
    print(
        f"load: {total} events ({traces} traces x {obs_per_trace} observations + scores) in {elapsed:.1f} s "
        f"({total / elapsed:,.0f} events/s)"
    )


def pct(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", type=Path, default=None, help="reuse (or create) the store here")
    parser.add_argument("--traces", type=int, default=100_000)
    parser.add_argument("--obs-per-trace", type=int, default=10)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--requests", type=int, default=50)
    args = parser.parse_args()

    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="lf-web-bench-")) / "data"
    init = InitSettings(
        org_id="bench-org",
        project_id=PROJECT,
        project_name="Bench",
        project_public_key="pk-lf-web-bench",
        project_secret_key="sk-lf-web-bench",
        user_email=EMAIL,
        user_password=PASSWORD,
    )
    services = build_services(load_settings(data_dir=data_dir, init=init))
    want = args.traces * args.obs_per_trace
    with services.engine.connect() as conn:
        have = conn.execute(
            select(func.count()).select_from(observations).where(observations.c.project_id == PROJECT)
        ).scalar_one()
    if have >= want:
        print(f"reusing {data_dir}: {have} observations")
    else:
        if have:
            raise SystemExit(
                f"{data_dir} holds {have} observations, fewer than {want}: use an empty directory"
            )
        print(f"loading into {data_dir}")
        load(services, args.traces, args.obs_per_trace, args.days)
    with services.engine.connect() as conn:
        n_obs = conn.execute(select(func.count()).select_from(observations)).scalar_one()
    print(f"observations in store: {n_obs}")

    timed = Timed(create_app(services))
    server = uvicorn.Server(
        uvicorn.Config(timed, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    base = f"http://127.0.0.1:{port}"

    # a trace from the middle of the newest day: what a user clicks on from the first page
    detail_id = f"tr-{args.traces - 1 - args.traces // (2 * args.days):07d}"
    pages = {
        "traces table (page 1)": f"/project/{PROJECT}/traces",
        "trace detail": f"/project/{PROJECT}/traces/{detail_id}",
        "project home (7d)": f"/project/{PROJECT}",
    }
    results: dict[str, list[float]] = {}
    print(f"server time per page (n={args.requests} each, after 3 warm-up requests):", flush=True)
    with httpx.Client(base_url=base, timeout=120) as client:
        csrf = CSRF_RE.search(client.get("/auth/sign-in").text).group(1)
        r = client.post(
            "/auth/sign-in",
            data={"csrf_token": csrf, "email": EMAIL, "password": PASSWORD},
            follow_redirects=False,
        )
        assert r.status_code == 303, (r.status_code, r.text[:500])
        for title, path in pages.items():
            for _ in range(3):  # warm-up: code paths, SQLite page cache
                r = client.get(path)
                assert r.status_code == 200, (path, r.status_code, r.text[:500])
            timed.samples.pop(path, None)
            for _ in range(args.requests):
                r = client.get(path)
                assert r.status_code == 200, (path, r.status_code)
            samples = results[title] = timed.samples.pop(path)
            p95 = pct(samples, 95)
            verdict = "ok" if p95 < TARGETS_MS[title] else "MISSED"
            print(
                f"  {title:<24} p50 {pct(samples, 50):8.1f} ms  p95 {p95:8.1f} ms  p99 {pct(samples, 99):8.1f} ms"
                f"  mean {statistics.fmean(samples) * 1000:8.1f} ms  target p95 < {TARGETS_MS[title]} ms: {verdict}",
                flush=True,
            )
    server.should_exit = True
    thread.join()
    services.engine.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
