"""A served Lightfuse decodes large OTLP exports in its helper process: every span is stored and reads back
as it does when decoded in the server, and a malformed large export is still a 400 that stores nothing."""

from __future__ import annotations

import time

import httpx
import pytest
from opentelemetry.trace import Tracer

from tests.conftest import make_server
from tests.unit.otlp_fixtures import PROTO, sdk_export

pytestmark = pytest.mark.slow

OTEL = "/api/public/otel/v1/traces"


def _export(batch: int, traces: int) -> tuple[bytes, list[str]]:
    """``traces`` traces (a root span and a generation each) by the real OpenTelemetry SDK, and their names."""
    names = [f"batch-{batch}-trace-{t}" for t in range(traces)]

    def build(tracer: Tracer) -> None:
        for name in names:
            with tracer.start_as_current_span(name) as root:
                root.set_attribute("langfuse.trace.name", name)
                root.set_attribute("langfuse.user.id", "user-offload")
                root.set_attribute("input.value", "question " * 60)
                with tracer.start_as_current_span("llm") as llm:
                    llm.set_attribute("gen_ai.request.model", "gpt-4o")
                    llm.set_attribute("gen_ai.usage.input_tokens", 120)
                    llm.set_attribute("gen_ai.usage.output_tokens", 30)

    return sdk_export(build), names


def _child_cpu_ticks(pid: int) -> int:
    total = 0
    for child in open(f"/proc/{pid}/task/{pid}/children").read().split():
        fields = open(f"/proc/{child}/stat").read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_large_exports_go_through_the_decode_process_and_are_stored_in_full(tmp_path, backend):
    server = make_server(tmp_path, backend, LIGHTFUSE_OTLP_DECODE_PROCESSES="1")
    server.start()
    try:
        headers = {"Content-Type": PROTO, **server.basic_header}
        sent: list[str] = []
        # The first large export starts the helper and is decoded in the server meanwhile; keep sending until
        # the helper has done real work (its CPU time moved), then a few more that it decodes.
        deadline = time.monotonic() + 60
        batch, after_helper = 0, 0
        while after_helper < 3:
            ticks = _child_cpu_ticks(server.process.pid)
            body, names = _export(batch, 40)
            assert len(body) > 16 * 1024
            r = httpx.post(server.url + OTEL, content=body, headers=headers, timeout=30)
            assert r.status_code == 200, r.text
            sent += names
            batch += 1
            if ticks and _child_cpu_ticks(server.process.pid) > ticks:
                after_helper += 1
            assert time.monotonic() < deadline, "the decode process never took an export"
            time.sleep(0.2 if not ticks else 0)

        # acknowledged = stored: every trace of every export is there at once, with its generation
        stored: list[dict] = []
        for page in range(1, len(sent) // 100 + 2):
            listed = httpx.get(
                f"{server.url}/api/public/traces",
                params={"userId": "user-offload", "limit": 100, "page": page},
                auth=server.auth,
            ).json()
            stored += listed["data"]
        assert sorted(t["name"] for t in stored) == sorted(sent)
        trace_id = stored[0]["id"]
        trace = httpx.get(f"{server.url}/api/public/traces/{trace_id}", auth=server.auth).json()
        generation = next(o for o in trace["observations"] if o["type"] == "GENERATION")
        assert generation["model"] == "gpt-4o"
        assert generation["usageDetails"] == {"input": 120, "output": 30, "total": 150}
        assert trace["input"] == "question " * 60

        # a large export that does not parse: 400 from the helper's decoder, nothing stored
        body, names = _export(batch, 40)
        r = httpx.post(server.url + OTEL, content=body[:-9], headers=headers, timeout=30)
        assert r.status_code == 400 and "Failed to parse OTel Protobuf Trace" in r.json()["error"]
        again = httpx.get(
            f"{server.url}/api/public/traces", params={"userId": "user-offload", "limit": 1}, auth=server.auth
        ).json()
        assert again["meta"]["totalItems"] == len(sent)
    finally:
        server.stop()
