"""Time to first token through the playground vs straight from the provider.

The requirement: the playground adds under 20 ms to the provider's time to first token.

Starts the fake OpenAI-compatible provider of the tests (tests/fake_llm.py, in this process, first token
after ``--provider-delay`` ms) and a real Lightfuse server process (``python -m lightfuse.cli serve``, embedded
SQLite, the allow-list naming 127.0.0.1), signs in through the form as the provisioned owner, adds the
connection through the public API, then alternates ``--requests`` times:

- direct: a streamed ``POST /v1/chat/completions`` to the provider (a new connection each time, as the
  playground opens one per run), timed to the first content chunk;
- through Lightfuse: ``POST /project/{id}/playground/run`` (session cookie + CSRF header), timed to the first
  ``delta`` event of the relayed stream.

Prints p50/p95/p99 of both and of the per-pair difference (the playground's overhead). The client, the fake
provider and the server share the machine, so run it on a quiet one.

usage: python bench/playground_bench.py [--requests 200] [--provider-delay 50]
Never run by the tests.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fake_llm import FakeLlm  # noqa: E402 - after the path tweak

EMAIL, PASSWORD = "bench-owner@example.com", "bench-password-1"
PUBLIC, SECRET = "pk-lf-pg-bench", "sk-lf-pg-bench"
PROJECT = "pg-bench"
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
HX_CSRF_RE = re.compile(r'"X-CSRF-Token": "([^"]+)"')
TARGET_MS = 20.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def start_server(data_dir: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LANGFUSE_", "DATABASE_URL", "SALT"))}
    env.update(
        PORT=str(port),
        HOSTNAME="127.0.0.1",
        LIGHTFUSE_DATA_DIR=str(data_dir),
        LANGFUSE_INIT_ORG_ID="bench-org",
        LANGFUSE_INIT_PROJECT_ID=PROJECT,
        LANGFUSE_INIT_PROJECT_NAME="Bench",
        LANGFUSE_INIT_PROJECT_PUBLIC_KEY=PUBLIC,
        LANGFUSE_INIT_PROJECT_SECRET_KEY=SECRET,
        LANGFUSE_INIT_USER_EMAIL=EMAIL,
        LANGFUSE_INIT_USER_PASSWORD=PASSWORD,
        LANGFUSE_LOG_LEVEL="warning",
        LANGFUSE_LLM_CONNECTION_WHITELISTED_IPS="127.0.0.1",
        LIGHTFUSE_SHUTDOWN_DELAY_SECONDS="0",
    )
    proc = subprocess.Popen([sys.executable, "-m", "lightfuse.cli", "serve"], env=env, cwd=data_dir.parent)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/api/public/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("the server did not start")


def direct_ttft(fake: FakeLlm, body: dict) -> float:
    with httpx.Client(timeout=30) as client:  # a new connection, as each playground run opens one
        start = time.perf_counter()
        with client.stream(
            "POST",
            fake.base_url + "/chat/completions",
            json={**body, "stream": True, "stream_options": {"include_usage": True}},
            headers={"Authorization": f"Bearer {fake.api_key}"},
        ) as r:
            for line in r.iter_lines():
                if line.startswith("data: {") and json.loads(line[6:])["choices"]:
                    if json.loads(line[6:])["choices"][0]["delta"].get("content"):
                        return time.perf_counter() - start
    raise RuntimeError("no content from the provider")


def playground_ttft(client: httpx.Client, csrf: str, body: dict) -> float:
    start = time.perf_counter()
    with client.stream(
        "POST", f"/project/{PROJECT}/playground/run", json=body, headers={"X-CSRF-Token": csrf}
    ) as r:
        assert r.status_code == 200, r.read()[:300]
        elapsed = None
        for line in r.iter_lines():  # read to the end: the run finishes (and is traced) before the next one
            if elapsed is None and line.startswith('data: {"type":"delta"'):
                elapsed = time.perf_counter() - start
    if elapsed is None:
        raise RuntimeError("no delta from the playground")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--provider-delay", type=float, default=50, help="provider's first-token delay, ms")
    args = parser.parse_args()

    fake = FakeLlm(token_delay=0.0, first_token_delay=args.provider_delay / 1000).start()
    data_dir = Path(tempfile.mkdtemp(prefix="lf-pg-bench-")) / "data"
    proc, url = start_server(data_dir)
    try:
        r = httpx.put(
            url + "/api/public/llm-connections",
            auth=(PUBLIC, SECRET),
            json={
                "provider": "fake",
                "adapter": "openai",
                "secretKey": fake.api_key,
                "baseURL": fake.base_url,
                "customModels": ["gpt-4o-mini"],
            },
        )
        assert r.status_code == 201, r.text
        connection_id = r.json()["id"]
        messages = [{"role": "user", "content": "the quick brown fox"}]
        with httpx.Client(base_url=url, timeout=30) as client:
            token = CSRF_RE.search(client.get("/auth/sign-in").text).group(1)
            r = client.post("/auth/sign-in", data={"csrf_token": token, "email": EMAIL, "password": PASSWORD})
            assert r.status_code == 303, r.text[:300]
            csrf = HX_CSRF_RE.search(client.get(f"/project/{PROJECT}/playground").text).group(1)
            run = {"connectionId": connection_id, "model": "gpt-4o-mini", "messages": messages}
            direct_body = {"model": "gpt-4o-mini", "messages": messages}
            for _ in range(5):  # warm-up: imports of the SDK, code paths, SQLite page cache
                playground_ttft(client, csrf, run)
                direct_ttft(fake, direct_body)
            direct, through = [], []
            for _ in range(args.requests):
                direct.append(direct_ttft(fake, direct_body) * 1000)
                through.append(playground_ttft(client, csrf, run) * 1000)
    finally:
        proc.terminate()
        proc.wait(30)
        fake.stop()
    overhead = [t - d for t, d in zip(through, direct, strict=True)]
    print(f"time to first token, n={args.requests}, provider first-token delay {args.provider_delay:.0f} ms")
    for title, samples in (("direct", direct), ("through Lightfuse", through), ("overhead", overhead)):
        print(
            f"  {title:18s} p50 {pct(samples, 50):7.1f} ms  p95 {pct(samples, 95):7.1f} ms  "
            f"p99 {pct(samples, 99):7.1f} ms  mean {statistics.fmean(samples):7.1f} ms"
        )
    p50 = pct(overhead, 50)
    print(f"overhead p50 {p50:.1f} ms: {'ok' if p50 < TARGET_MS else 'MISSED'} (target < {TARGET_MS:.0f} ms)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
