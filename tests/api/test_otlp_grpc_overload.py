"""OTLP/gRPC under overload, in-process: the real services and gRPC server, with the writer held back.

A full writer queue and a full intake byte budget answer UNAVAILABLE with RetryInfo (as google.rpc.Status
details and as the bare trailer opentelemetry-python reads); the SDK's exporter then retries and succeeds.
"""

from __future__ import annotations

import asyncio
import base64
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.conftest import free_port

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


@dataclass
class Harness:
    services: object
    target: str
    authorization: str
    loop: asyncio.AbstractEventLoop
    server: object

    def metadata(self) -> tuple:
        return (("authorization", self.authorization),)


@pytest.fixture
def held_back(backend) -> Iterator[Harness]:
    """Services whose writer is not started yet (exports wait in its queue), a queue of one event."""
    from lightfuse.api.otlp_grpc import OtlpGrpcServer
    from lightfuse.app import build_services
    from lightfuse.config import InitSettings, load_settings

    public_key, secret_key = f"pk-lf-{uuid.uuid4()}", f"sk-lf-{uuid.uuid4()}"
    init = InitSettings(
        org_id="org-1", project_id="project-1", project_public_key=public_key, project_secret_key=secret_key
    )
    services = build_services(load_settings(**backend, init=init, ingest_queue_max_events=1))
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    port = free_port()

    async def start():
        server = OtlpGrpcServer(services, "127.0.0.1", port)
        await server.start()
        return server

    server = asyncio.run_coroutine_threadsafe(start(), loop).result(30)
    token = base64.b64encode(f"{public_key}:{secret_key}".encode()).decode()
    try:
        yield Harness(services, f"127.0.0.1:{port}", f"Basic {token}", loop, server)
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(5), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        services.pipeline.stop()
        services.otlp.close()
        services.engine.dispose()


def spans(name: str) -> list:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("overload")
    with tracer.start_as_current_span(name), tracer.start_as_current_span(f"{name} child"):
        pass
    provider.shutdown()
    return list(memory.get_finished_spans())


def wait_for(condition, what: str, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def retry_delay(error: grpc.RpcError) -> float:
    trailers = dict(error.trailing_metadata() or ())
    bare = error_details_pb2.RetryInfo.FromString(trailers["google.rpc.retryinfo-bin"])
    status = status_pb2.Status.FromString(trailers["grpc-status-details-bin"])
    assert status.code == error.code().value[0] and status.message == error.details()
    [detail] = status.details
    packed = error_details_pb2.RetryInfo()
    assert detail.Unpack(packed) and packed == bare
    return bare.retry_delay.seconds + bare.retry_delay.nanos / 1e9


def test_full_queue_and_full_budget_answer_unavailable_with_retry_info(held_back):
    h = held_back
    pipeline, budget = h.services.pipeline, h.services.budget
    with grpc.insecure_channel(h.target) as channel:
        export = channel.unary_unary(EXPORT)
        first = export.future(
            encode_spans(spans("first")).SerializeToString(), metadata=h.metadata(), timeout=60
        )
        wait_for(lambda: pipeline.pending_events > 0, "the first export to wait for the writer")

        with pytest.raises(grpc.RpcError) as queue_full:
            export(encode_spans(spans("second")).SerializeToString(), metadata=h.metadata(), timeout=30)
        assert queue_full.value.code() == grpc.StatusCode.UNAVAILABLE
        assert retry_delay(queue_full.value) == 1

        # the intake budget: another request's bytes fill it
        budget.add(budget.max_bytes)
        try:
            with pytest.raises(grpc.RpcError) as busy:
                export(encode_spans(spans("third")).SerializeToString(), metadata=h.metadata(), timeout=30)
        finally:
            budget.release(budget.max_bytes)
        assert busy.value.code() == grpc.StatusCode.UNAVAILABLE and retry_delay(busy.value) == 1
        assert not first.done()  # acknowledged only once committed, and nothing commits yet

        pipeline.start()
        first.result(timeout=60)  # OK now: committed
    assert budget.held_bytes == 0
    assert pipeline.pending_events == 0


def test_sdk_exporter_retries_unavailable_and_succeeds(held_back):
    h = held_back
    budget, metrics = h.services.budget, h.services.metrics
    h.services.pipeline.start()

    def refused() -> float:
        labels = {"method": EXPORT, "code": "UNAVAILABLE"}
        return metrics.registry.get_sample_value("lightfuse_grpc_requests_total", labels) or 0.0

    before = refused()
    sdk = OTLPSpanExporter(endpoint=h.target, insecure=True, headers=h.metadata(), timeout=60)
    result: list = []
    budget.add(budget.max_bytes)
    try:
        worker = threading.Thread(target=lambda: result.append(sdk.export(spans("retried"))))
        worker.start()
        wait_for(lambda: refused() > before, "the exporter's first attempt to be refused")
    finally:
        budget.release(budget.max_bytes)
    worker.join(60)
    sdk.shutdown()
    assert result == [SpanExportResult.SUCCESS]


def test_stop_refuses_new_calls_and_lets_the_one_in_flight_commit(held_back):
    h = held_back
    pipeline = h.services.pipeline
    with grpc.insecure_channel(h.target) as channel:
        export = channel.unary_unary(EXPORT)
        in_flight = export.future(
            encode_spans(spans("in flight")).SerializeToString(), metadata=h.metadata(), timeout=60
        )
        wait_for(lambda: pipeline.pending_events > 0, "the export to wait for the writer")
        stopping = asyncio.run_coroutine_threadsafe(h.server.stop(30), h.loop)
        time.sleep(0.5)  # let the stop begin; the call is still waiting for the writer
        assert not stopping.done() and not in_flight.done()
        with grpc.insecure_channel(h.target) as late_channel:
            with pytest.raises(grpc.RpcError) as late:
                late_channel.unary_unary(EXPORT)(b"", metadata=h.metadata(), timeout=10)
        assert late.value.code() == grpc.StatusCode.UNAVAILABLE  # nobody listens any more
        pipeline.start()
        in_flight.result(timeout=60)  # answered OK: committed before the stop completed
        stopping.result(60)
    assert pipeline.pending_events == 0
