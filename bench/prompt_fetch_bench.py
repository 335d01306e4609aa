"""Prompt fetch by label at scale: 1,000 prompts x 20 versions (issue #18: p99 < 5 ms of server time).

Seeds the versions straight into the prompts table (one transaction; ``production`` on version 15, ``latest``
on 20, a config and tags on each), serves the app with uvicorn in this process behind the timing ASGI wrapper
of ``prompts_bench.py`` and sends sequential keep-alive ``GET /api/public/v2/prompts/{name}?label=production``
for names drawn at random, then prints p50/p90/p99 of the server time (wall) and of the process CPU time per request, in two phases:

* cached: the service's in-process cache holds every name (what a steady stream of SDK fetches sees);
* uncached: the cache is off (``cache_size=0``), so every request reads the revision and the version by
  label from the database (the first fetch after a write, or a process that just started).

usage: python bench/prompt_fetch_bench.py [--prompts 1000] [--versions 20] [--requests 5000]
       [--database-url postgresql://...]. Never run by the tests.
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import httpx
import uvicorn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from prompts_bench import Timed, report  # noqa: E402

from lightfuse.app import build_services, create_app  # noqa: E402
from lightfuse.config import InitSettings, load_settings  # noqa: E402
from lightfuse.services.prompts.prompts import PromptService  # noqa: E402
from lightfuse.store.sql import prompts as prompt_store  # noqa: E402
from lightfuse.store.sql.tables_prompts import prompts as prompts_table  # noqa: E402

PROJECT = "bench"
EMAIL, PASSWORD = "bench@example.com", "bench-password-1"
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


class TimedCpu(Timed):
    """Also the process CPU time per request: the client waits on its socket while the app works, so this is
    the server's own CPU, which - unlike wall time - other processes on a busy machine do not inflate."""

    def __init__(self, app) -> None:
        super().__init__(app)
        self.cpu: list[float] = []

    async def __call__(self, scope, receive, send):
        cpu = time.process_time()
        await super().__call__(scope, receive, send)
        if scope["type"] == "http":
            self.cpu.append(time.process_time() - cpu)


def seed(engine, n_prompts: int, n_versions: int) -> list[str]:
    now = int(time.time() * 1000)
    names = [f"team-{i % 20:02d}/feature-{i:04d}/system" for i in range(n_prompts)]
    production = min(15, n_versions)
    with engine.begin() as conn:
        prompt_store.bump_revision(conn, PROJECT)
        for name in names:
            rows = []
            for v in range(1, n_versions + 1):
                labels = (["production"] if v == production else []) + (["latest"] if v == n_versions else [])
                rows.append(
                    {
                        "id": str(uuid.uuid4()),
                        "project_id": PROJECT,
                        "name": name,
                        "version": v,
                        "type": "text",
                        "prompt": f"You are the assistant of {name}, version {v}. Help {{{{user}}}}. " * 8,
                        "config": {"model": "gpt-4o", "temperature": v / 100},
                        "labels": labels,
                        "tags": ["bench", name.split("/")[0]],
                        "commit_message": f"v{v}",
                        "created_by": "API",
                        "created_at": now - (n_versions - v) * 60_000,
                        "updated_at": now - (n_versions - v) * 60_000,
                    }
                )
            conn.execute(prompts_table.insert(), rows)
    return names


def run(url: str, auth, names: list[str], requests: int, timed: TimedCpu, production: int) -> None:
    rng = random.Random(7)
    with httpx.Client(auth=auth) as client:
        for name in names[:200]:  # warm-up: connection and code paths
            client.get(f"{url}/{quote(name, safe='')}", params={"label": "production"})
        timed.samples.clear()
        timed.cpu.clear()
        for _ in range(requests):
            name = rng.choice(names)
            r = client.get(f"{url}/{quote(name, safe='')}", params={"label": "production"})
            assert r.status_code == 200 and r.json()["version"] == production, r.text


def pages(base: str, names: list[str], requests: int, timed: TimedCpu) -> None:
    """Server time of the prompt pages (signed in as the project owner) on the same data."""
    with httpx.Client(base_url=base) as client:
        token = CSRF_RE.search(client.get("/auth/sign-in").text).group(1)  # type: ignore[union-attr]
        r = client.post("/auth/sign-in", data={"csrf_token": token, "email": EMAIL, "password": PASSWORD})
        assert r.status_code == 303, r.text
        name = names[len(names) // 2]
        targets = {
            "list, top level (20 folders)": f"/project/{PROJECT}/prompts",
            "list, search 'feature-01'": f"/project/{PROJECT}/prompts?q=feature-01",
            "prompt page (20 versions)": f"/project/{PROJECT}/prompts/{quote(name, safe='/')}",
            "diff v1 vs v20": f"/project/{PROJECT}/prompt-diff?name={quote(name, safe='')}&a=1&b=20",
        }
        for title, path in targets.items():
            for _ in range(3):
                assert client.get(path).status_code == 200
            timed.samples.clear()
            timed.cpu.clear()
            for _ in range(requests):
                assert client.get(path).status_code == 200
            report(title, list(timed.samples))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--prompts", type=int, default=1000)
    parser.add_argument("--versions", type=int, default=20)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--database-url", default=None)
    parser.add_argument(
        "--pages", type=int, default=0, help="also time the UI's prompt pages, N requests each"
    )
    args = parser.parse_args()

    pk, sk = f"pk-lf-{uuid.uuid4()}", f"sk-lf-{uuid.uuid4()}"
    data_dir = Path(tempfile.mkdtemp(prefix="lf-prompt-fetch-")) / "data"
    overrides: dict = {
        "data_dir": data_dir,
        "init": InitSettings(
            org_id="bench-org",
            project_id=PROJECT,
            project_public_key=pk,
            project_secret_key=sk,
            user_email=EMAIL,
            user_password=PASSWORD,
        ),
    }
    if args.database_url:
        overrides.update(database_url=args.database_url, salt="bench-salt", nextauth_secret="bench-secret")
    services = build_services(load_settings(**overrides))
    start = time.perf_counter()
    names = seed(services.engine, args.prompts, args.versions)
    print(
        f"backend: {services.engine.dialect.name}; seeded {args.prompts} prompts x {args.versions} versions "
        f"in {time.perf_counter() - start:.1f} s",
        flush=True,
    )

    timed = TimedCpu(create_app(services))
    server = uvicorn.Server(
        uvicorn.Config(timed, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    url = f"http://127.0.0.1:{port}/api/public/v2/prompts"
    production = min(15, args.versions)

    # cache_size above the number of names: after one pass every fetch is a hit
    services.prompts = PromptService(services.engine, cache_size=max(4096, 2 * args.prompts))
    for name in names:
        services.prompts.get(PROJECT, name, label="production")
    run(url, (pk, sk), names, args.requests, timed, production)
    report("server time, cached", list(timed.samples))
    report("server CPU, cached", list(timed.cpu))

    services.prompts = PromptService(services.engine, cache_size=0)
    run(url, (pk, sk), names, args.requests, timed, production)
    report("server time, uncached", list(timed.samples))
    report("server CPU, uncached", list(timed.cpu))

    if args.pages:
        pages(f"http://127.0.0.1:{port}", names, args.pages, timed)

    server.should_exit = True
    thread.join()
    services.engine.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
