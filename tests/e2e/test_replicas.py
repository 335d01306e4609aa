"""Two server processes on one Postgres database give the same result as one process.

The load is security issue #13's: 200 traces, each with ten events (trace-creates alternating with a span's
create and updates, each event with its own metadata key and output), sent in batches of five to the two
servers alternately by concurrent threads. The two halves of a trace's events go through both servers at once,
the later half sometimes stored first (the event-log replay path).
Every metadata key an acknowledged event set must be on the stored rows, and the rows must equal what one
process makes of the same load.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry import trace as otel_trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from tests.conftest import Server, _create_pg_database, _drop_pg_database, free_port, make_server
from tests.unit.otlp_fixtures import PROTO, T0, sdk_export

pytestmark = pytest.mark.slow

TRACES = 200
STEPS = 10  # events per trace
BATCH = 5
PAIRS = 4  # pairs of sending threads
OTLP_TRACES = 100
OTLP_SPANS = 4  # exports per OTLP trace, one span each
# every event states the trace's timestamp and the span's start: they are kept from an entity's first stored
# event, so without them the result would depend on which half of a trace is stored first (in one process too)
_START = "2026-01-01T00:00:00.000Z"


@dataclass
class Load:
    trace_ids: list[str]
    span_ids: list[str]
    otlp_trace_ids: list[str]
    exports: list[bytes]


def _event(trace_id: str, span_id: str, step: int) -> dict:
    ts = f"2026-01-01T00:00:00.{step * 100:03d}Z"
    if step % 2 == 0:
        body = {
            "id": trace_id,
            "name": "replicated",
            "timestamp": _START,
            "metadata": {f"t{step}": step},
            "output": f"trace-out-{step}",
        }
        if step == 0:
            body["input"] = "trace-in"
        return {"id": str(uuid.uuid4()), "type": "trace-create", "timestamp": ts, "body": body}
    body = {
        "id": span_id,
        "traceId": trace_id,
        "startTime": _START,
        "metadata": {f"s{step}": step},
        "output": f"span-out-{step}",
    }
    if step == 1:
        body["name"] = "step"
    return {
        "id": str(uuid.uuid4()),
        "type": "span-create" if step == 1 else "span-update",
        "timestamp": ts,
        "body": body,
    }


def _batches(trace_ids: list[str], span_ids: list[str]) -> list[list[dict]]:
    """Each trace's ten events in order, cut into batches of five: its first half and its second half are
    neighbouring batches, so they go to different servers."""
    events = [
        _event(tid, sid, step) for tid, sid in zip(trace_ids, span_ids, strict=True) for step in range(STEPS)
    ]
    return [events[i : i + BATCH] for i in range(0, len(events), BATCH)]


def _post_batch(client: httpx.Client, batch: list[dict]) -> str | None:
    r = client.post("/api/public/ingestion", json={"batch": batch})
    if r.status_code != 207 or r.json()["errors"] or len(r.json()["successes"]) != len(batch):
        return f"{r.status_code} {r.text[:300]}"
    return None


def _post_export(client: httpx.Client, export: bytes) -> str | None:
    r = client.post("/api/public/otel/v1/traces", content=export, headers={"Content-Type": PROTO})
    return None if r.status_code == 200 else f"{r.status_code} {r.text[:300]}"


def _send(servers: list[Server], items: list, post: Callable[[httpx.Client, Any], str | None]) -> list[str]:
    """Post item k to servers[k % 2]: PAIRS pairs of threads, each pair posting its two items at the same
    moment (meeting at a barrier first); returns the problems (an answer other than success, or a per-event
    error)."""
    problems: list[str] = []

    def sender(srv: Server, side: int, pair: int, barrier: threading.Barrier) -> None:
        with httpx.Client(base_url=srv.url, auth=srv.auth, timeout=60) as client:
            for k in range(2 * pair + side, len(items), 2 * PAIRS):
                barrier.wait(timeout=60)
                problem = post(client, items[k])
                if problem is not None:
                    problems.append(f"{srv.url}: {problem}")

    threads = []
    for pair in range(PAIRS):
        barrier = threading.Barrier(2)
        threads += [
            threading.Thread(target=sender, args=(servers[side % len(servers)], side, pair, barrier))
            for side in (0, 1)
        ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a sender hung"
    return problems


_OBSERVATION_FIELDS = ("id", "name", "type", "metadata", "output", "startTime", "endTime")


def _read(srv: Server, trace_ids: list[str]) -> dict[str, dict]:
    """What matters of each trace and its observations, as the public API returns them."""
    out = {}
    with httpx.Client(base_url=srv.url, auth=srv.auth, timeout=30) as client:
        for tid in trace_ids:
            r = client.get(f"/api/public/traces/{tid}")
            assert r.status_code == 200, r.text
            t = r.json()
            out[tid] = {
                "name": t["name"],
                "input": t["input"],
                "output": t["output"],
                "metadata": t["metadata"],
                "timestamp": t["timestamp"],
                "tags": t["tags"],
                "observations": sorted(
                    ({k: o.get(k) for k in _OBSERVATION_FIELDS} for o in t["observations"]),
                    key=lambda o: o["id"],
                ),
            }
    return out


def _wrong(result: dict[str, dict]) -> list[str]:
    """Traces missing a metadata key (or the latest output) that an acknowledged event set."""
    want_trace = {f"t{s}": s for s in range(0, STEPS, 2)}
    want_span = {f"s{s}": s for s in range(1, STEPS, 2)}
    wrong = []
    for tid, t in result.items():
        spans = t["observations"]
        if (
            t["metadata"] != want_trace
            or t["output"] != f"trace-out-{STEPS - 2}"
            or len(spans) != 1
            or spans[0]["metadata"] != want_span
            or spans[0]["output"] != f"span-out-{STEPS - 1}"
        ):
            wrong.append(tid)
    return wrong


def _server_on(tmp_path: Path, name: str, database_url: str, like: Server | None = None) -> Server:
    """A server process on ``database_url``; ``like``: a second process of the same deployment (same keys)."""
    directory = tmp_path / name
    directory.mkdir()
    backend = {
        "database_url": database_url.replace("postgresql+psycopg://", "postgresql://"),
        "salt": "test-salt",
        "nextauth_secret": "test-secret",
    }
    srv = make_server(directory, backend)
    if like is not None:
        # the same LANGFUSE_INIT_* as the first process (applied again, idempotently), its own port and disk
        port = free_port()
        env = dict(like.env, PORT=str(port), LIGHTFUSE_DATA_DIR=str(srv.data_dir))
        srv = Server(
            url=f"http://127.0.0.1:{port}",
            public_key=like.public_key,
            secret_key=like.secret_key,
            project_id=like.project_id,
            env=env,
            data_dir=srv.data_dir,
            log_path=srv.log_path,
        )
    return srv


def _start(srv: Server, failures: list[str]) -> None:
    try:
        srv.start()
    except RuntimeError as exc:
        failures.append(str(exc)[-2000:])


def _otlp_exports(trace_ids: list[str]) -> list[bytes]:
    """OTLP_SPANS exports per trace, one span each: children of one remote parent, all starting at once, each
    adding its own trace metadata key and tag (partial trace-create events of one trace, through both
    servers)."""
    exports = []
    for tid in trace_ids:
        parent = otel_trace.set_span_in_context(
            NonRecordingSpan(
                SpanContext(int(tid, 16), int(tid[:16], 16), is_remote=True, trace_flags=TraceFlags(1))
            )
        )
        for i in range(OTLP_SPANS):

            def build(tracer, i=i, parent=parent):
                span = tracer.start_span(
                    f"otel-step-{i}",
                    context=parent,
                    start_time=T0,
                    attributes={
                        f"langfuse.trace.metadata.k{i}": str(i),
                        "langfuse.trace.tags": [f"tag{i}"],
                        f"langfuse.observation.metadata.m{i}": str(i),
                    },
                )
                span.end(end_time=T0 + (i + 1) * 1_000_000)

            exports.append(sdk_export(build))
    return exports


def _otlp_wrong(result: dict[str, dict]) -> list[str]:
    """OTLP traces missing a span, a trace metadata key or a tag that an accepted export carried."""
    return [
        tid
        for tid, t in result.items()
        if len(t["observations"]) != OTLP_SPANS
        or t["tags"] != [f"tag{i}" for i in range(OTLP_SPANS)]
        # sent as the string "i"; read back as the number, by Langfuse's metadata read rule (api-semantics 2.4)
        or any(t["metadata"].get(f"k{i}") != i for i in range(OTLP_SPANS))
    ]


def _run(servers: list[Server], load: Load) -> tuple[dict[str, dict], dict[str, dict]]:
    """The batch load, then the OTLP load; what each stored, read back through servers[0]."""
    problems = _send(servers, _batches(load.trace_ids, load.span_ids), _post_batch)
    problems += _send(servers, load.exports, _post_export)
    assert problems == []
    return _read(servers[0], load.trace_ids), _read(servers[0], load.otlp_trace_ids)


def _differing(single: dict[str, dict], replicated: dict[str, dict]) -> str:
    differing = [tid for tid in single if single[tid] != replicated[tid]]
    if not differing:
        return ""
    return f"{len(differing)} differ, e.g. {single[differing[0]]} != {replicated[differing[0]]}"


def test_two_processes_on_one_postgres_lose_nothing(tmp_path, pg_database_url):
    otlp_trace_ids = [uuid.uuid4().hex for _ in range(OTLP_TRACES)]
    load = Load(
        trace_ids=[str(uuid.uuid4()) for _ in range(TRACES)],
        span_ids=[str(uuid.uuid4()) for _ in range(TRACES)],
        otlp_trace_ids=otlp_trace_ids,
        exports=_otlp_exports(otlp_trace_ids),
    )

    single_name, single_url = _create_pg_database()
    single = _server_on(tmp_path, "single", single_url)
    try:
        single.start()
        single_result, single_otlp = _run([single], load)
    finally:
        single.stop()
        _drop_pg_database(single_name)
    assert _wrong(single_result) == []
    assert _otlp_wrong(single_otlp) == []

    first = _server_on(tmp_path, "first", pg_database_url)
    second = _server_on(tmp_path, "second", pg_database_url, like=first)
    try:
        # started at once, as two pods are: migrations and LANGFUSE_INIT_* run in both, one after the other
        failures: list[str] = []
        starters = [threading.Thread(target=_start, args=(srv, failures)) for srv in (first, second)]
        for t in starters:
            t.start()
        for t in starters:
            t.join(timeout=120)
        assert failures == []
        for srv in (first, second):
            assert httpx.get(srv.url + "/api/public/projects", auth=srv.auth).status_code == 200
        replicated, replicated_otlp = _run([first, second], load)
        # the second process reads the same rows
        assert _read(second, load.trace_ids[:10]) == {tid: replicated[tid] for tid in load.trace_ids[:10]}
    finally:
        for srv in (first, second):
            srv.stop()

    wrong = _wrong(replicated)
    assert wrong == [], f"{len(wrong)} of {TRACES} traces lost an acknowledged update"
    wrong = _otlp_wrong(replicated_otlp)
    assert wrong == [], f"{len(wrong)} of {OTLP_TRACES} OTLP traces lost an accepted span's trace attributes"
    assert _differing(single_result, replicated) == ""
    assert _differing(single_otlp, replicated_otlp) == ""
