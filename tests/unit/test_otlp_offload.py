"""DecodeOffload with real child processes: the same events as decoding in the server, the same errors, and no
export lost when a child dies."""

from __future__ import annotations

import gzip
import json
import os
import signal
import time

import pytest
from opentelemetry.trace import Tracer

from lightfuse.ingest.otlp_decode import MSG_PROTOBUF, OtlpDecodeError
from lightfuse.services.ingestion.otlp_offload import DecodeOffload, OtlpRejected, decode_to_events
from tests.unit.otlp_fixtures import JSON, NOW_MS, PROTO, sdk_export


def _export(traces: int) -> bytes:
    """``traces`` traces of a root span and a generation, exported by the real OpenTelemetry SDK."""

    def build(tracer: Tracer) -> None:
        for t in range(traces):
            with tracer.start_as_current_span("root") as root:
                root.set_attribute("langfuse.user.id", f"user-{t}")
                root.set_attribute("input.value", "question " * 40)
                with tracer.start_as_current_span("llm") as llm:
                    llm.set_attribute("gen_ai.request.model", "gpt-4o")
                    llm.set_attribute("gen_ai.usage.input_tokens", 12)
                    llm.set_attribute("gen_ai.usage.output_tokens", 3)

    return sdk_export(build)


def _wait_ready(offload: DecodeOffload, body: bytes) -> None:
    deadline = time.monotonic() + 60
    while not offload.ready:
        offload.run(body, PROTO, None, NOW_MS)  # starts the pool; decoded inline meanwhile
        if time.monotonic() > deadline:
            raise AssertionError("the decode processes did not start")
        time.sleep(0.05)


def _children() -> set[int]:
    return {int(p) for p in open(f"/proc/{os.getpid()}/task/{os.getpid()}/children").read().split()}


@pytest.fixture
def offload():
    pool = DecodeOffload(1, min_bytes=0)
    try:
        yield pool
    finally:
        pool.close()


def test_a_child_gives_the_same_events_as_the_server(offload):
    body = _export(30)
    before = _children()
    _wait_ready(offload, body)
    assert _children() - before, "a decode process runs"
    expected = decode_to_events(body, PROTO, None, NOW_MS)
    got = offload.run(body, PROTO, None, NOW_MS)
    assert got == expected
    assert len(got.events) == 30 * 3  # two observations and one trace event per trace
    assert len(set(got.trace_ids)) == 30
    gz = offload.run(gzip.compress(body), PROTO, "gzip", NOW_MS)
    assert gz == expected


def test_errors_raised_in_a_child_reach_the_caller_unchanged(offload):
    body = _export(5)
    _wait_ready(offload, body)
    with pytest.raises(OtlpDecodeError) as exc:
        offload.run(body[:-7], PROTO, None, NOW_MS)
    assert exc.value.message == MSG_PROTOBUF
    with pytest.raises(OtlpDecodeError):
        offload.run(body, "text/plain", None, NOW_MS)
    # decodes, but a span id is longer than the store takes: the whole export is refused
    span = {
        "traceId": "a" * 32,
        "spanId": "ab" * 450,
        "name": "huge-id",
        "startTimeUnixNano": "1750000000000000000",
    }
    bad = json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}).encode()
    with pytest.raises(OtlpRejected):
        offload.run(bad, JSON, None, NOW_MS)


def test_a_killed_child_loses_no_export_and_the_pool_comes_back(offload):
    body = _export(10)
    expected = decode_to_events(body, PROTO, None, NOW_MS)
    before = _children()
    _wait_ready(offload, body)
    for pid in _children() - before:
        os.kill(pid, signal.SIGKILL)
    time.sleep(0.5)
    assert offload.run(body, PROTO, None, NOW_MS) == expected  # decoded in the server this time
    _wait_ready(offload, body)
    assert offload.run(body, PROTO, None, NOW_MS) == expected


def test_small_exports_and_zero_processes_stay_in_the_server():
    body = _export(1)
    small = DecodeOffload(1, min_bytes=len(body) + 1)
    none = DecodeOffload(0, min_bytes=0)
    try:
        before = _children()
        for pool in (small, none):
            for _ in range(3):
                assert pool.run(body, PROTO, None, NOW_MS) == decode_to_events(body, PROTO, None, NOW_MS)
            assert not pool.ready
        assert _children() == before
    finally:
        small.close()
        none.close()
