"""OTLP over gRPC: ``opentelemetry.proto.collector.trace.v1.TraceService/Export`` on LIGHTFUSE_OTLP_GRPC_PORT.

The OpenTelemetry Collector's and most exporters' default protocol. It is the HTTP receiver (``otel.py``) behind
another transport: the same auth (``authorization: Basic base64(pk:sk)`` in the call's metadata, checked by the
same ``ApiKeyService``), the same decode + mapping + validation (``OtlpIngestor.to_events`` on the raw protobuf
bytes, in the same helper processes), the same single writer, and the same contract: ``Export`` answers OK only
after every span of the request is committed, and a refused request stores nothing.

Status codes (the OTLP spec's; exporters retry UNAVAILABLE, and honour RetryInfo):
* UNAUTHENTICATED: missing or wrong credentials; PERMISSION_DENIED: an organisation key;
* INVALID_ARGUMENT: an export that does not decode or map (nothing stored, not retried);
* UNAVAILABLE + RetryInfo (1 s): the writer's queue or the intake byte budget is full, the store is out of
  space, or the server is stopping;
* RESOURCE_EXHAUSTED: a message over ``max_receive_message_length`` (gRPC's own check, before decoding) or
  more calls at once than ``maximum_concurrent_rpcs``;
* INTERNAL: an unexpected storage error (as the HTTP route's 500).

grpc.aio runs on the server's own event loop (uvloop), started and stopped by the app's lifespan; ``grpcio``
is the optional ``[grpc]`` extra, imported only when the port is set. Messages arrive whole before the handler
runs (gRPC has no Content-Length to refuse early), so memory is bounded by ``maximum_concurrent_rpcs`` x the
message limit, and by the intake budget once a message is in hand.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import grpc
from google.protobuf.duration_pb2 import Duration
from google.rpc import code_pb2, error_details_pb2, status_pb2

from lightfuse.api.ingestion import count_refusal
from lightfuse.api.otel import OTLP_BODY_LIMIT, unsupported_ingestion_version
from lightfuse.services.auth.api_keys import AuthError
from lightfuse.services.ingestion.otlp_intake import OtlpDecodeError, OtlpRejected
from lightfuse.services.ingestion.pipeline import IntakeFull
from lightfuse.services.ingestion.storage_health import RETRY_AFTER_SECONDS, StoreFull

log = logging.getLogger(__name__)

__all__ = ["OtlpGrpcServer", "SERVICE", "EXPORT_METHOD"]

SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"
EXPORT_METHOD = f"/{SERVICE}/Export"
# calls handled at once; each holds its whole message (up to OTLP_BODY_LIMIT), so this bounds that memory
MAX_CONCURRENT_RPCS = 32
_EMPTY_RESPONSE = b""  # an ExportTraceServiceResponse without partial_success serialises to nothing
_PROTOBUF = "application/x-protobuf"


class _Refused(Exception):
    def __init__(self, code: grpc.StatusCode, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retry_after = retry_after


def _retry_trailers(code: grpc.StatusCode, message: str, seconds: float) -> tuple[tuple[str, bytes], ...]:
    """RetryInfo both ways exporters read it: google.rpc.Status details (the Collector, Go, Java) and the bare
    ``google.rpc.retryinfo-bin`` trailer (opentelemetry-python)."""
    delay = Duration(seconds=int(seconds), nanos=int((seconds % 1) * 1e9))
    info = error_details_pb2.RetryInfo(retry_delay=delay)
    status = status_pb2.Status(code=getattr(code_pb2, code.name), message=message)
    status.details.add().Pack(info)
    return (
        ("grpc-status-details-bin", status.SerializeToString()),
        ("google.rpc.retryinfo-bin", info.SerializeToString()),
    )


# ``services`` below is the app's ``Services`` (app.state.services for the HTTP routes); api/ does not import app
Services = Any


class _TraceService:
    def __init__(self, services: Services) -> None:
        self._services = services

    async def export(self, body: bytes, context: grpc.aio.ServicerContext) -> bytes:
        services = self._services
        started = time.perf_counter()
        code = grpc.StatusCode.OK
        try:
            await self._export(body, context)
            return _EMPTY_RESPONSE
        except _Refused as refused:
            code = refused.code
            trailers: tuple[tuple[str, Any], ...] = ()
            if refused.retry_after is not None:
                trailers = _retry_trailers(refused.code, refused.message, refused.retry_after)
            await context.abort(refused.code, refused.message, trailers)
            raise AssertionError("abort raises") from None  # pragma: no cover - for the type checker
        except asyncio.CancelledError:
            code = grpc.StatusCode.CANCELLED
            raise
        except Exception:
            # grpc.aio would answer UNKNOWN with the exception text; log it once and answer as HTTP's 500
            log.exception("unhandled error in gRPC %s", EXPORT_METHOD)
            code = grpc.StatusCode.INTERNAL
            await context.abort(code, "Internal Server Error")
            raise AssertionError("abort raises") from None  # pragma: no cover
        finally:
            metrics = services.metrics
            metrics.grpc_requests.labels(EXPORT_METHOD, code.name).inc()
            metrics.grpc_duration.labels(EXPORT_METHOD).observe(time.perf_counter() - started)

    async def _export(self, body: bytes, context: grpc.aio.ServicerContext) -> None:
        services = self._services
        metadata = {
            key: value for key, value in context.invocation_metadata() or () if isinstance(value, str)
        }
        auth = await asyncio.to_thread(_authenticate, services, metadata.get("authorization"))
        problem = unsupported_ingestion_version(metadata.get("x-langfuse-ingestion-version"))
        if problem is not None:
            raise _Refused(grpc.StatusCode.INVALID_ARGUMENT, problem)
        budget = services.budget
        if not budget.try_acquire(len(body)):
            services.metrics.intake_refusals.labels("intake_bytes").inc()
            raise _Refused(
                grpc.StatusCode.UNAVAILABLE,
                "Ingestion is busy (too many request bytes held), retry shortly",
                retry_after=1,
            )
        try:
            await self._store(auth.project_id, body)
        finally:
            budget.release(len(body))

    async def _store(self, project_id: str, body: bytes) -> None:
        services = self._services
        ingestor = services.otlp
        try:
            # gRPC has already undone its own message compression: the body is the plain protobuf
            events = await asyncio.to_thread(ingestor.to_events, project_id, body, _PROTOBUF, None)
        except (OtlpDecodeError, OtlpRejected) as exc:
            raise _Refused(grpc.StatusCode.INVALID_ARGUMENT, str(exc)) from None
        if not events:
            return
        try:
            failures = await ingestor.ingest(project_id, events)
        except IntakeFull as exc:
            count_refusal(services.metrics, exc.reason, events)
            raise _Refused(
                grpc.StatusCode.UNAVAILABLE, "Ingestion is busy, retry shortly", retry_after=1
            ) from None
        except StoreFull:
            services.storage.record_full()
            services.storage.count_refusal()
            services.metrics.intake_refusals.labels("store_full").inc()
            raise _Refused(
                grpc.StatusCode.UNAVAILABLE,
                "The store is out of space, retry later",
                retry_after=RETRY_AFTER_SECONDS,
            ) from None
        if failures:
            raise _Refused(grpc.StatusCode.INTERNAL, "spans could not be stored")


def _authenticate(services: Services, authorization: str | None):
    try:
        auth = services.keys.authenticate(authorization)
    except AuthError as exc:
        code = grpc.StatusCode.PERMISSION_DENIED if exc.status == 403 else grpc.StatusCode.UNAUTHENTICATED
        raise _Refused(code, exc.message) from None
    if auth.access_level != "project":
        raise _Refused(grpc.StatusCode.PERMISSION_DENIED, "Access denied - insufficient permissions")
    return auth


class OtlpGrpcServer:
    """The gRPC listener: ``start()`` binds (raises OSError if the port is taken), ``stop(grace)`` refuses new
    calls at once and lets those in flight finish (each is committed before its answer) for ``grace`` s."""

    def __init__(self, services: Services, host: str, port: int) -> None:
        self._address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        service = _TraceService(services)
        # raw bytes in and out: the body goes to the same decoder as the HTTP route's, in a worker thread
        handler = grpc.method_handlers_generic_handler(
            SERVICE, {"Export": grpc.unary_unary_rpc_method_handler(service.export)}
        )
        self._server = grpc.aio.server(
            handlers=(handler,),
            maximum_concurrent_rpcs=MAX_CONCURRENT_RPCS,
            options=(
                ("grpc.max_receive_message_length", OTLP_BODY_LIMIT),
                ("grpc.max_send_message_length", 1024 * 1024),
                # a second server on the same port must fail to start, not share the port silently
                ("grpc.so_reuseport", 0),
            ),
        )
        self.port = 0
        self._stopping: asyncio.Future[None] | None = None

    async def start(self) -> None:
        try:
            self.port = self._server.add_insecure_port(self._address)
        except RuntimeError as exc:
            raise OSError(f"cannot listen for OTLP/gRPC on {self._address}: {exc}") from None
        await self._server.start()

    async def stop(self, grace: float) -> None:
        """Idempotent: a second call waits for the stop the first one started."""
        if self._stopping is None:
            self._stopping = asyncio.ensure_future(self._server.stop(grace))
        await asyncio.shield(self._stopping)
