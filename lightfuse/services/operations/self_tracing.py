"""Self-tracing: Lightfuse's own requests and SQL as OpenTelemetry spans, exported over OTLP/HTTP.

Enabled by ``OTEL_EXPORTER_OTLP_ENDPOINT`` (Langfuse's variables: ``OTEL_SERVICE_NAME``,
``OTEL_TRACE_SAMPLING_RATIO``). Nothing of the OpenTelemetry SDK or its instrumentations is imported unless it
is set: they are the ``otel`` extra (``pip install 'lightfuse[otel]'``, which the Dockerfile installs).

Contract: ``install(app, engine, endpoint=, service_name=, sampling_ratio=)`` returns a ``SelfTracing`` whose
``shutdown()`` flushes the spans still batched; the endpoint is the OTLP/HTTP base (``/v1/traces`` is appended
unless the URL already ends with it), and the exporter's other settings (``OTEL_EXPORTER_OTLP_HEADERS``, e.g.
``Authorization=Basic ...`` for a Langfuse or Lightfuse receiver) come from the environment as usual.
Sampling is parent-based: a request that arrives with a sampled ``traceparent`` stays sampled.
"""

from __future__ import annotations

import logging

__all__ = ["SelfTracing", "install"]

log = logging.getLogger(__name__)


class SelfTracing:
    def __init__(self, provider) -> None:
        self._provider = provider

    def shutdown(self) -> None:
        try:
            self._provider.shutdown()
        except Exception:  # an unreachable collector must not fail the shutdown
            log.exception("self-tracing: flushing spans failed")


def install(app, engine, *, endpoint: str, service_name: str, sampling_ratio: float) -> SelfTracing:
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
        from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
        from opentelemetry.sdk.resources import SERVICE_NAME, Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
    except ImportError as exc:
        raise RuntimeError(
            "OTEL_EXPORTER_OTLP_ENDPOINT is set but the OpenTelemetry packages are missing: "
            "pip install 'lightfuse[otel]'"
        ) from exc

    url = endpoint.rstrip("/")
    if not url.endswith("/v1/traces"):
        url += "/v1/traces"
    provider = TracerProvider(
        resource=Resource.create({SERVICE_NAME: service_name}),
        sampler=ParentBased(TraceIdRatioBased(sampling_ratio)),
    )
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=url)))
    # the provider is passed explicitly (not set globally), so a test process can build several apps
    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=provider,
        excluded_urls="/api/public/health,/api/public/ready,/metrics",
        # one span per request, not one more per ASGI message
        exclude_spans=["receive", "send"],
    )
    # skip_dep_check: the instrumentation declares "sqlalchemy < 2.1" (its releases lag SQLAlchemy's) and
    # would otherwise do nothing; it hooks the engine's public cursor events, which 2.1 keeps
    # (tests/e2e/test_self_tracing.py reads the SQL spans back)
    SQLAlchemyInstrumentor().instrument(engine=engine, tracer_provider=provider, skip_dep_check=True)
    log.info("self-tracing to %s as %s (sampling ratio %s)", url, service_name, sampling_ratio)
    return SelfTracing(provider)
