"""Self-tracing: one Lightfuse exports its own spans (OpenTelemetry SDK, FastAPI and SQLAlchemy
instrumentation, OTLP/HTTP) to a second Lightfuse's OTLP endpoint, where they are read back through the API.
Without OTEL_EXPORTER_OTLP_ENDPOINT nothing of the SDK is loaded."""

from __future__ import annotations

import subprocess
import sys
import time
from urllib.parse import quote

import httpx
import pytest

from tests.conftest import make_server

pytestmark = pytest.mark.slow


def test_spans_reach_a_second_lightfuse(tmp_path):
    receiver = make_server(tmp_path / "receiver", {"data_dir": tmp_path / "receiver" / "data"})
    (tmp_path / "receiver").mkdir()
    receiver.start()
    (tmp_path / "traced").mkdir()
    traced = make_server(
        tmp_path / "traced",
        {"data_dir": tmp_path / "traced" / "data"},
        OTEL_EXPORTER_OTLP_ENDPOINT=receiver.url + "/api/public/otel",
        OTEL_EXPORTER_OTLP_HEADERS=f"Authorization={quote(receiver.basic_header['Authorization'])}",
        OTEL_SERVICE_NAME="lightfuse-under-test",
        OTEL_TRACE_SAMPLING_RATIO="1",
        OTEL_BSP_SCHEDULE_DELAY="200",  # the SDK's batch delay (ms): export soon
    )
    traced.start()
    try:
        batch = {
            "batch": [
                {
                    "id": "ev-1",
                    "type": "trace-create",
                    "timestamp": "2026-01-01T00:00:00.000Z",
                    "body": {"id": "traced-app-trace", "name": "app"},
                }
            ]
        }
        assert (
            httpx.post(traced.url + "/api/public/ingestion", json=batch, auth=traced.auth).status_code == 207
        )
        assert (
            httpx.get(traced.url + "/api/public/traces/traced-app-trace", auth=traced.auth).status_code == 200
        )

        found: dict[str, dict] = {}
        for _ in range(100):  # bounded: the exporter sends every 200 ms
            r = httpx.get(
                receiver.url + "/api/public/observations", auth=receiver.auth, params={"limit": 100}
            )
            assert r.status_code == 200, r.text
            found = {o["name"]: o for o in r.json()["data"]}
            if any(name.startswith("GET /api/public/traces/") for name in found) and any(
                name.startswith("POST /api/public/ingestion") for name in found
            ):
                break
            time.sleep(0.2)
        names = sorted(found)
        # the route template, not the raw path, names the server span; one span per request (no ASGI ones)
        assert "GET /api/public/traces/{traceId}" in names and "POST /api/public/ingestion" in names, names
        assert not [n for n in names if n.endswith(("http send", "http receive"))], names
        read_span = found["GET /api/public/traces/{traceId}"]
        trace = httpx.get(
            f"{receiver.url}/api/public/traces/{read_span['traceId']}", auth=receiver.auth
        ).json()
        assert trace["metadata"]["resourceAttributes"]["service.name"] == "lightfuse-under-test"
        # the SQLAlchemy instrumentation: the read's SQL is a child span of the request
        children = [o for o in trace["observations"] if o["parentObservationId"] == read_span["id"]]
        sql = [o for o in children if "FROM traces" in str(o["metadata"])]
        assert sql, [(o["name"], o["metadata"]) for o in trace["observations"]]
        assert sql[0]["name"].lower().startswith("select")
    finally:
        traced.stop()
        receiver.stop()


def test_nothing_of_the_sdk_is_loaded_when_unset(tmp_path):
    code = (
        "import sys\n"
        "from lightfuse.config import load_settings\n"
        "from lightfuse.app import build_services, create_app\n"
        f"create_app(build_services(load_settings(data_dir={str(tmp_path / 'data')!r})))\n"
        "print(sorted(m for m in sys.modules if m.startswith(('opentelemetry.sdk', "
        "'opentelemetry.instrumentation', 'opentelemetry.exporter'))))\n"
    )
    env = {"PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"
    env["OTEL_EXPORTER_OTLP_ENDPOINT"] = "http://127.0.0.1:9"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "opentelemetry.sdk.trace" in out.stdout
