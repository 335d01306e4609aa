"""Prompt GET latency on the hot path (a resolved prompt served from the in-process cache).

Builds the app on a fresh embedded SQLite store (or ``--database-url postgresql://...``), creates a text prompt
that references another one (so a miss costs a dependency resolution), and serves it with uvicorn in this
process behind a timing ASGI wrapper. Then it sends sequential keep-alive GETs and prints percentiles of

* server time: from the ASGI call to the last response byte, i.e. auth, routing, the revision check, the cache
  lookup and JSON rendering (what the app spends; uvicorn's HTTP parsing excluded);
* client latency: what an httpx client on the same machine observes (adds loopback and client overhead);
* the service call alone (``PromptService.get``), without HTTP.

usage: python bench/prompts_bench.py [--requests N] [--database-url URL]. Never run by the tests.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx
import uvicorn

from lightfuse.app import build_services, create_app
from lightfuse.config import InitSettings, load_settings


class Timed:
    """ASGI wrapper recording the app's time per HTTP request."""

    def __init__(self, app) -> None:
        self.app = app
        self.samples: list[float] = []

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        await self.app(scope, receive, send)
        self.samples.append(time.perf_counter() - start)


def pct(samples: list[float], p: float) -> str:
    ordered = sorted(samples)
    return f"{ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000:.3f} ms"


def report(title: str, samples: list[float]) -> None:
    print(
        f"{title:<28} p50 {pct(samples, 50)}  p90 {pct(samples, 90)}  p99 {pct(samples, 99)}  "
        f"mean {statistics.fmean(samples) * 1000:.3f} ms  (n={len(samples)})"
    )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()

    pk, sk = f"pk-lf-{uuid.uuid4()}", f"sk-lf-{uuid.uuid4()}"
    data_dir = Path(tempfile.mkdtemp(prefix="lf-prompt-bench-")) / "data"
    overrides: dict = {
        "data_dir": data_dir,
        "init": InitSettings(
            org_id="bench-org", project_id="bench", project_public_key=pk, project_secret_key=sk
        ),
    }
    if args.database_url:
        overrides.update(database_url=args.database_url, salt="bench-salt", nextauth_secret="bench-secret")
    services = build_services(load_settings(**overrides))
    services.prompts.create(
        "bench", {"name": "shared/policy", "prompt": "Be kind. " * 50, "labels": ["production"]}
    )
    services.prompts.create(
        "bench",
        {
            "name": "support/system",
            "prompt": "You help {{user}}.\n@@@langfusePrompt:name=shared/policy|label=production@@@",
            "labels": ["production"],
            "config": {"model": "gpt-4o", "temperature": 0.2},
        },
    )

    timed = Timed(create_app(services))
    server = uvicorn.Server(
        uvicorn.Config(timed, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]

    url = f"http://127.0.0.1:{port}/api/public/v2/prompts/support%2Fsystem"
    client_samples: list[float] = []
    with httpx.Client(auth=(pk, sk)) as client:
        first = client.get(url)
        assert first.status_code == 200 and "Be kind." in first.json()["prompt"], first.text
        for _ in range(200):  # warm-up: connection, code paths, cache
            client.get(url)
        timed.samples.clear()
        for _ in range(args.requests):
            start = time.perf_counter()
            r = client.get(url)
            client_samples.append(time.perf_counter() - start)
            assert r.status_code == 200
    server_samples = list(timed.samples)
    server.should_exit = True
    thread.join()

    call_samples: list[float] = []
    for _ in range(args.requests):
        start = time.perf_counter()
        services.prompts.get("bench", "support/system")
        call_samples.append(time.perf_counter() - start)

    print(f"backend: {services.engine.dialect.name}")
    report("server time (ASGI app)", server_samples)
    report("client latency (httpx)", client_samples)
    report("PromptService.get", call_samples)
    services.engine.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
