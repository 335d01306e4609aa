"""Bounded intake (503 + Retry-After instead of unbounded memory), legacy single-object endpoints, keys CLI."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from lightfuse.services.ingestion.events import validate_event
from lightfuse.services.ingestion.pipeline import IngestionPipeline, IntakeFull


def _events(n: int, prefix: str):
    return [
        validate_event(
            {
                "id": f"{prefix}-{i}",
                "type": "trace-create",
                "timestamp": "2026-01-01T00:00:00Z",
                "body": {"id": f"{prefix}-t{i}"},
            },
            "project",
        )
        for i in range(n)
    ]


def test_full_intake_refuses_instead_of_queueing(api):
    services = api.services
    # a writer that has not started yet stands for one that has fallen behind
    pipeline = IngestionPipeline(services.engine, services.models.price_book, max_pending_events=3)
    first = pipeline.submit_nowait(api.project_id, _events(3, "a"))
    with pytest.raises(IntakeFull):
        pipeline.submit_nowait(api.project_id, _events(1, "b"))
    assert pipeline.pending_events == 3
    pipeline.start()
    assert first.result(timeout=30) == {}
    assert pipeline.pending_events == 0
    # once drained it accepts again
    assert pipeline.submit_sync(api.project_id, _events(2, "c")) == {}
    pipeline.stop()
    r = api.client.get("/api/public/traces/c-t1", auth=api.auth)
    assert r.status_code == 200


def test_http_answers_503_with_retry_after_when_full(api):
    services = api.services
    real = services.pipeline
    services.pipeline = IngestionPipeline(services.engine, services.models.price_book, max_pending_events=2)
    try:
        services.pipeline.submit_nowait(api.project_id, _events(2, "fill"))
        r = api.ingest(
            [{"id": "x", "type": "trace-create", "timestamp": "2026-01-01T00:00:00Z", "body": {"id": "x"}}]
        )
        assert r.status_code == 503
        assert r.headers["retry-after"] == "1"
        assert r.json()["error"] == "ServiceUnavailableError"
    finally:
        services.pipeline.start()
        services.pipeline.stop()
        services.pipeline = real


def test_legacy_single_object_endpoints(api):
    c, auth = api.client, api.auth
    r = c.post("/api/public/traces", json={"name": "legacy", "userId": "u"}, auth=auth)
    assert r.status_code == 200
    trace_id = r.json()["id"]
    r = c.post(
        "/api/public/generations",
        auth=auth,
        json={
            "traceId": trace_id,
            "name": "gen",
            "model": "gpt-4o",
            "prompt": [{"role": "user", "content": "hi"}],
            "completion": "hello",
            "usage": {"input": 10, "output": 5},
            "startTime": "2026-01-01T00:00:00Z",
        },
    )
    assert r.status_code == 200
    gen_id = r.json()["id"]
    r = c.patch(
        "/api/public/generations",
        auth=auth,
        json={"generationId": gen_id, "traceId": trace_id, "endTime": "2026-01-01T00:00:02Z"},
    )
    assert r.status_code == 200, r.text
    r = c.post("/api/public/spans", auth=auth, json={"id": "sp-1", "traceId": trace_id, "name": "span"})
    assert r.json() == {"id": "sp-1"}
    assert (
        c.patch("/api/public/spans", auth=auth, json={"spanId": "sp-1", "output": "done"}).status_code == 200
    )
    assert (
        c.post("/api/public/events", auth=auth, json={"traceId": trace_id, "name": "ev"}).status_code == 200
    )
    r = c.post("/api/public/spans", auth=auth, json={"traceId": trace_id, "startTime": "2026-01-01T00:00:00"})
    assert r.status_code == 400  # naive timestamp
    detail = c.get(f"/api/public/traces/{trace_id}", auth=auth).json()
    obs = {o["name"]: o for o in detail["observations"]}
    assert obs["gen"]["input"] == [{"role": "user", "content": "hi"}] and obs["gen"]["output"] == "hello"
    assert obs["gen"]["latency"] == 2.0
    assert obs["span"]["output"] == "done" and obs["ev"]["type"] == "EVENT"


def test_keys_create_cli(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LANGFUSE_", "DATABASE_URL"))}
    env.update(LIGHTFUSE_DATA_DIR=str(tmp_path), LANGFUSE_INIT_ORG_ID="o", LANGFUSE_INIT_PROJECT_ID="p")
    run = [sys.executable, "-m", "lightfuse.cli", "keys", "create", "--project"]
    out = subprocess.run([*run, "p"], env=env, capture_output=True, text=True, check=True).stdout
    pairs = dict(line.split("=", 1) for line in out.split())
    assert pairs["LANGFUSE_PUBLIC_KEY"].startswith("pk-lf-") and pairs["LANGFUSE_SECRET_KEY"].startswith(
        "sk-lf-"
    )
    missing = subprocess.run([*run, "nope"], env=env, capture_output=True, text=True)
    assert missing.returncode == 2 and "not found" in missing.stderr
