"""Prometheus /metrics of a real server after a real SDK run, read with prometheus_client's own text parser.

The OpenTelemetry SDK script (tests/clients/scripts/otel_exporter.py) exports generations of gpt-4o (priced
from the default model table) and gpt-4o-mini; /metrics must show the same cost per model as the API reads
back, the requests by route template, the events stored, the writer's commits and the database pool. Also:
the metrics port and its bearer token, the ingestion byte bound (503 + Retry-After while another body is
held), and failIfNoRecentEvents.
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import free_port, make_server
from tests.e2e.test_otel_exporter import run_otel_sdk

pytestmark = pytest.mark.slow


def scrape(url: str, **kwargs) -> dict[str, list]:
    r = httpx.get(url, timeout=10, **kwargs)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    samples: dict[str, list] = defaultdict(list)
    for family in text_string_to_metric_families(r.text):
        for sample in family.samples:
            samples[sample.name].append(sample)
    return samples


def value(samples: dict[str, list], name: str, **labels) -> float:
    return sum(s.value for s in samples.get(name, []) if all(s.labels.get(k) == v for k, v in labels.items()))


@pytest.fixture
def sqlite_server(tmp_path):
    srv = make_server(tmp_path, {"data_dir": tmp_path / "data"})
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def test_metrics_after_a_real_sdk_run_show_cost_per_model(sqlite_server):
    server = sqlite_server
    ids = run_otel_sdk(server)
    # what the API says was stored, per model
    cost_by_model: dict[str, float] = defaultdict(float)
    tokens_by_model: dict[str, float] = defaultdict(float)
    generations: dict[str, int] = defaultdict(int)
    for key in ("genai_trace", "oi_trace", "json_trace"):
        trace = httpx.get(f"{server.url}/api/public/traces/{ids[key]}", auth=server.auth).json()
        for obs in trace["observations"]:
            if obs.get("model"):
                cost_by_model[obs["model"]] += obs.get("calculatedTotalCost") or 0
                tokens_by_model[obs["model"]] += (obs.get("usageDetails") or {}).get("total", 0)
            if obs["type"] == "GENERATION":
                generations[obs.get("model") or ""] += 1
    assert cost_by_model["gpt-4o"] > 0 and "gpt-4o-mini" in cost_by_model

    samples = scrape(server.url + "/metrics")
    project = server.project_id
    for model, cost in cost_by_model.items():
        assert value(
            samples, "lightfuse_llm_cost_usd_total", project_id=project, model=model, environment="default"
        ) == pytest.approx(cost), model
        assert value(
            samples, "lightfuse_llm_tokens_total", project_id=project, model=model, kind="total"
        ) == pytest.approx(tokens_by_model[model]), model
    for model, count in generations.items():
        assert value(samples, "lightfuse_llm_generations_total", project_id=project, model=model) == count

    # requests by route template (the trace read above is one route, whatever its id)
    assert (
        value(samples, "lightfuse_http_requests_total", route="/api/public/traces/{traceId}", status="200")
        == 3
    )
    assert (
        value(samples, "lightfuse_http_requests_total", route="/api/public/otel/v1/traces", status="200") >= 1
    )
    assert not [
        s for s in samples["lightfuse_http_requests_total"] if ids["genai_trace"] in s.labels["route"]
    ]
    assert value(samples, "lightfuse_http_request_duration_seconds_count", route="/v1/traces") >= 1
    # events stored by type, the writer's commits, the pool, the store
    assert value(samples, "lightfuse_ingestion_events_total", type="generation-create", result="stored") >= 3
    assert value(samples, "lightfuse_writer_commit_duration_seconds_count") >= 1
    assert value(samples, "lightfuse_writer_batch_events_sum") >= 3
    assert value(samples, "lightfuse_ingestion_lag_seconds_count") >= 1
    assert value(samples, "lightfuse_db_pool_connections", state="size") > 0
    assert value(samples, "lightfuse_store_writable") == 1
    assert "lightfuse_ingest_pending_events" in samples and "lightfuse_ingest_held_bytes" in samples

    # an invalid event is counted by its type, an unknown type as "unknown"
    batch = {
        "batch": [
            {"id": "e1", "type": "trace-create", "timestamp": "not a time", "body": {"id": "t"}},
            {"id": "e2", "type": "made-up", "timestamp": "2026-01-01T00:00:00Z", "body": {}},
        ]
    }
    assert httpx.post(server.url + "/api/public/ingestion", json=batch, auth=server.auth).status_code == 207
    samples = scrape(server.url + "/metrics")
    assert value(samples, "lightfuse_ingestion_events_total", type="trace-create", result="invalid") == 1
    assert value(samples, "lightfuse_ingestion_events_total", type="unknown", result="invalid") == 1


def test_metrics_port_and_bearer_token(tmp_path):
    port = free_port()
    server = make_server(
        tmp_path,
        {"data_dir": tmp_path / "data"},
        LIGHTFUSE_METRICS_PORT=str(port),
        LIGHTFUSE_METRICS_TOKEN="scrape-secret",
    )
    server.start()
    try:
        # not on the app's (public) port any more
        assert httpx.get(server.url + "/metrics").status_code == 404
        metrics_url = f"http://127.0.0.1:{port}/metrics"
        assert httpx.get(metrics_url).status_code == 401
        assert httpx.get(metrics_url, headers={"Authorization": "Bearer wrong"}).status_code == 401
        samples = scrape(metrics_url, headers={"Authorization": "Bearer scrape-secret"})
        assert value(samples, "lightfuse_http_requests_total", route="/metrics", status="404") == 1
    finally:
        server.stop()


def test_token_on_the_app_port(tmp_path):
    server = make_server(tmp_path, {"data_dir": tmp_path / "data"}, LIGHTFUSE_METRICS_TOKEN="scrape-secret")
    server.start()
    try:
        r = httpx.get(server.url + "/metrics")
        assert r.status_code == 401 and r.json()["error"] == "UnauthorizedError"
        scrape(server.url + "/metrics", headers={"Authorization": "Bearer scrape-secret"})
    finally:
        server.stop()


def test_intake_byte_bound_refuses_while_another_body_is_held(tmp_path):
    server = make_server(tmp_path, {"data_dir": tmp_path / "data"}, LIGHTFUSE_INGEST_QUEUE_MAX_BYTES="2000")
    server.start()
    try:
        release = threading.Event()
        first: dict = {}
        body = json.dumps(
            {
                "batch": [
                    {
                        "id": "ev-slow",
                        "type": "trace-create",
                        "timestamp": "2026-01-01T00:00:00.000Z",
                        "body": {"id": "held-trace", "name": "x" * 3000},
                    }
                ]
            }
        ).encode()

        def chunks():  # no Content-Length: counted as it arrives, and held until the request is answered
            yield body[:2500]
            release.wait(30)
            yield body[2500:]

        def slow():
            first["response"] = httpx.post(
                server.url + "/api/public/ingestion", content=chunks(), auth=server.auth, timeout=60
            )

        thread = threading.Thread(target=slow)
        thread.start()
        small = {
            "batch": [
                {
                    "id": "ev-2",
                    "type": "trace-create",
                    "timestamp": "2026-01-01T00:00:00.000Z",
                    "body": {"id": "second-trace"},
                }
            ]
        }
        refused = None
        for _ in range(100):  # until the first body's bytes are held
            r = httpx.post(server.url + "/api/public/ingestion", json=small, auth=server.auth)
            if r.status_code == 503:
                refused = r
                break
            time.sleep(0.05)
        release.set()
        thread.join(60)
        assert refused is not None
        assert refused.headers["retry-after"] == "1" and refused.json()["error"] == "ServiceUnavailableError"
        assert first["response"].status_code == 207, first["response"].text
        # once nothing is held, the same request goes through
        r = httpx.post(server.url + "/api/public/ingestion", json=small, auth=server.auth)
        assert r.status_code == 207 and r.json()["successes"]
        samples = scrape(server.url + "/metrics")
        assert value(samples, "lightfuse_ingestion_refusals_total", reason="intake_bytes") >= 1
        assert value(samples, "lightfuse_ingest_held_bytes") == 0
    finally:
        server.stop()


def test_health_fail_if_no_recent_events(sqlite_server):
    server = sqlite_server
    url = server.url + "/api/public/health"
    r = httpx.get(url, params={"failIfNoRecentEvents": "true"})
    assert r.status_code == 503 and r.json()["status"] == "Health check failed"
    assert httpx.get(url).status_code == 200
    batch = {
        "batch": [
            {
                "id": "ev-1",
                "type": "trace-create",
                "timestamp": "2026-01-01T00:00:00.000Z",
                "body": {"id": "recent"},
            }
        ]
    }
    assert httpx.post(server.url + "/api/public/ingestion", json=batch, auth=server.auth).status_code == 207
    assert httpx.get(url, params={"failIfNoRecentEvents": "true"}).json() == {
        "status": "OK",
        "version": r.json()["version"],
    }
    assert httpx.get(url, params={"failIfDatabaseUnavailable": "true"}).status_code == 200
