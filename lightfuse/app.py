"""Composition root: build every service from the settings and wire them into one ASGI app."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from dataclasses import dataclass

from fastapi import FastAPI
from sqlalchemy import Engine

from lightfuse import __version__
from lightfuse.api import (
    admin,
    annotation_queues,
    comments,
    datasets,
    experiments,
    health,
    ingestion,
    integrations,
    llm_connections,
    media,
    metrics,
    models,
    observations,
    organizations,
    otel,
    projects,
    prompts,
    scim,
    score_configs,
    scores,
    sessions,
    traces,
)
from lightfuse.api.common import install_error_handlers
from lightfuse.api.observability import MetricsServer, ObservabilityMiddleware
from lightfuse.config import Settings, webhook_policy
from lightfuse.services.accounts.accounts import AccountService
from lightfuse.services.accounts.project_purge import ProjectPurger
from lightfuse.services.annotations.annotations import AnnotationService
from lightfuse.services.auth.api_keys import ApiKeyService
from lightfuse.services.automations.automations import AutomationService
from lightfuse.services.automations.delivery import WebhookSender
from lightfuse.services.common.outbound import LLM_VARIABLES, OutboundPolicy
from lightfuse.services.datasets.datasets import DatasetService
from lightfuse.services.datasets.experiments import ExperimentAwareOtlpIngestor, ExperimentRecorder
from lightfuse.services.datasets.runs import DatasetRunService
from lightfuse.services.ingestion.budget import IntakeBudget
from lightfuse.services.ingestion.otlp_intake import OtlpIngestor
from lightfuse.services.ingestion.otlp_offload import DecodeOffload
from lightfuse.services.ingestion.pipeline import IngestionPipeline
from lightfuse.services.ingestion.storage_health import StorageHealth, StoreFull
from lightfuse.services.llm.connections import LlmConnections
from lightfuse.services.llm.playground import Playground
from lightfuse.services.media.media import MediaService
from lightfuse.services.operations.health import Lifecycle
from lightfuse.services.operations.metrics import OpsMetrics
from lightfuse.services.pricing.model_registry import ModelRegistry
from lightfuse.services.prompts.prompts import PromptService
from lightfuse.store.blobs import BlobStore, LocalDirectoryBlobStore
from lightfuse.store.sql import migrate
from lightfuse.store.sql.database import make_engine
from lightfuse.web import install as install_web
from lightfuse.worker.daemon import PeriodicDaemon


@dataclass
class Services:
    settings: Settings
    engine: Engine
    keys: ApiKeyService
    accounts: AccountService
    models: ModelRegistry
    pipeline: IngestionPipeline
    otlp: OtlpIngestor
    prompts: PromptService
    media: MediaService
    datasets: DatasetService
    dataset_runs: DatasetRunService
    annotations: AnnotationService
    purger: ProjectPurger
    automations: AutomationService
    webhooks: WebhookSender
    storage: StorageHealth
    metrics: OpsMetrics
    budget: IntakeBudget
    lifecycle: Lifecycle
    llm_connections: LlmConnections
    playground: Playground
    version: str = __version__


def build_services(settings: Settings) -> Services:
    engine = make_engine(
        settings.sqlalchemy_url,
        sqlite_synchronous=settings.sqlite_synchronous,
        sqlite_memory_limit_mib=settings.sqlite_memory_limit_mib,
    )
    migrate.upgrade(engine)
    keys = ApiKeyService(engine, settings.salt or "")
    accounts = AccountService(engine, keys)
    models = ModelRegistry(engine)
    storage = StorageHealth(engine, settings.data_dir)
    metrics = OpsMetrics()
    pipeline = IngestionPipeline(
        engine,
        models.price_book,
        max_pending_events=settings.ingest_queue_max_events,
        health=storage,
        metrics=metrics,
    )
    budget = IntakeBudget(settings.ingest_queue_max_bytes)
    _watch_state(metrics, engine, storage, pipeline, budget)
    accounts.provision(settings.init)
    blobs = build_blob_store(settings)
    media = MediaService(
        engine,
        blobs,
        settings.encryption_key or settings.salt or "",
        max_content_length=settings.media.max_content_length,
        download_url_ttl=settings.media.download_url_expiry_seconds,
        download_base_url=settings.media_download_base_url,
    )
    # experiment spans also become dataset run items (services/datasets/experiments.py)
    otlp = ExperimentAwareOtlpIngestor(
        pipeline, ExperimentRecorder(engine), DecodeOffload(settings.otlp_decode_processes)
    )
    connections = LlmConnections(
        engine,
        settings.encryption_key,
        OutboundPolicy(
            settings.llm_whitelisted_hosts,
            settings.llm_whitelisted_ips,
            settings.llm_whitelisted_ip_segments,
            settings.llm_completion_timeout_ms,
            env_prefix=LLM_VARIABLES,
        ),
    )
    # prompt changes write webhook deliveries in their own transaction (services/common/change_events.py)
    hooks = webhook_policy(settings)
    automations = AutomationService(engine, settings.encryption_key, hooks)
    webhooks = WebhookSender(
        engine,
        settings.encryption_key,
        hooks,
        max_attempts=settings.webhook_max_attempts,
        base_delay_s=settings.webhook_retry_base_seconds,
    )
    return Services(
        settings,
        engine,
        keys,
        accounts,
        models,
        pipeline,
        otlp,
        prompts=PromptService(engine, listeners=[automations.on_change]),
        media=media,
        datasets=DatasetService(engine, media),
        dataset_runs=DatasetRunService(engine),
        annotations=AnnotationService(engine),
        purger=ProjectPurger(engine, blobs, grace_seconds=settings.project_purge_grace_seconds),
        automations=automations,
        webhooks=webhooks,
        storage=storage,
        metrics=metrics,
        budget=budget,
        lifecycle=Lifecycle(),
        llm_connections=connections,
        playground=Playground(connections, pipeline, settings.llm_completion_timeout_ms / 1000),
    )


def _watch_state(
    metrics: OpsMetrics,
    engine: Engine,
    storage: StorageHealth,
    pipeline: IngestionPipeline,
    budget: IntakeBudget,
) -> None:
    """Gauges of live state, read at scrape time (nothing on the hot path updates them)."""
    metrics.watch(
        "lightfuse_store_writable",
        "1 while the store writes, 0 while writes fail for lack of space.",
        lambda: 0 if storage.full else 1,
    )
    metrics.watch(
        "lightfuse_store_full_refusals",
        "Requests answered 503 because the store was out of space.",
        lambda: storage.refusals,
        counter=True,
    )
    metrics.watch(
        "lightfuse_ingest_pending_events",
        "Ingested events waiting for the writer.",
        lambda: pipeline.pending_events,
    )
    metrics.watch(
        "lightfuse_ingest_held_bytes",
        "Ingestion request bytes held (reading, decoding, waiting for the writer).",
        lambda: budget.held_bytes,
    )
    metrics.watch("lightfuse_ingest_max_bytes", "LIGHTFUSE_INGEST_QUEUE_MAX_BYTES.", lambda: budget.max_bytes)
    pool = engine.pool

    def pool_state():
        # QueuePool on SQLite files and Postgres; another pool class reports what it has
        for state in ("size", "checkedout", "overflow", "checkedin"):
            read = getattr(pool, state, None)
            if callable(read):
                yield (state,), float(read())

    metrics.watch_labelled(
        "lightfuse_db_pool_connections",
        "The database connection pool: size (configured), "
        "checkedout (in use), checkedin (idle), overflow (beyond size).",
        ["state"],
        pool_state,
    )


def build_blob_store(settings: Settings) -> BlobStore:
    """S3 when LANGFUSE_S3_MEDIA_UPLOAD_BUCKET is set, else ``<data_dir>/media``."""
    media = settings.media
    if not media.bucket:
        return LocalDirectoryBlobStore(settings.data_dir / "media")
    from lightfuse.store.blobs.s3 import S3BlobStore  # boto3 is loaded only by deployments that use it

    secret = media.secret_access_key.get_secret_value() if media.secret_access_key else None
    return S3BlobStore(
        media.bucket,
        prefix=media.prefix,
        region=media.region,
        endpoint=media.endpoint,
        access_key_id=media.access_key_id,
        secret_access_key=secret,
        force_path_style=media.force_path_style,
    )


def create_app(services: Services) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI):
        services.pipeline.start()
        # API keys' last use, recorded in memory per request, reaches the database every 30 s
        metrics = services.metrics
        key_use = PeriodicDaemon(
            "API key use",
            metrics.timed_job("api_key_use", lambda _should_stop: services.keys.flush_last_used()),
            interval=30,
            first_delay=30,
        )
        # deleted projects' data (services/accounts/project_purge.py): soon after start, then every interval
        interval = services.settings.project_purge_interval_seconds
        purge = PeriodicDaemon(
            "project purge",
            metrics.timed_job("project_purge", services.purger.purge_due),
            interval=interval,
            first_delay=min(interval, 10),
        )
        # webhook deliveries (services/automations/delivery.py): the outbox is polled, due rows are sent
        deliveries = PeriodicDaemon(
            "webhook deliveries",
            metrics.timed_job("webhook_deliveries", services.webhooks.run_due),
            interval=services.settings.webhook_poll_seconds,
            first_delay=services.settings.webhook_poll_seconds,
        )
        key_use.start()
        purge.start()
        deliveries.start()
        settings = services.settings
        metrics_server = None
        if settings.metrics_port:
            token = settings.metrics_token.get_secret_value() if settings.metrics_token else None
            metrics_server = MetricsServer(metrics, settings.hostname, settings.metrics_port, token)
            metrics_server.start()
        grpc_server = None
        if settings.otlp_grpc_port:
            from lightfuse.api.otlp_grpc import OtlpGrpcServer  # grpcio is loaded only when the port is set

            grpc_server = OtlpGrpcServer(services, settings.hostname, settings.otlp_grpc_port)
            await grpc_server.start()
            # stops taking calls when the HTTP listener closes (lightfuse/server.py), drains alongside it
            services.lifecycle.on_close(
                functools.partial(grpc_server.stop, settings.shutdown_timeout_seconds)
            )
            logging.getLogger("lightfuse").info(
                "OTLP/gRPC listening on %s:%s", settings.hostname, settings.otlp_grpc_port
            )
        try:
            yield
        finally:
            if grpc_server is not None:
                # already stopping since the HTTP listener closed (or stopped now, e.g. under a TestClient):
                # calls in flight finish - committed before their answer - while the writer still runs
                await grpc_server.stop(settings.shutdown_timeout_seconds)
            await key_use.stop()
            await purge.stop()
            await deliveries.stop()
            # drain: every acknowledged event is already committed, this finishes what is queued
            await asyncio.to_thread(services.pipeline.stop)
            await asyncio.to_thread(services.otlp.close)
            services.keys.flush_last_used()
            if metrics_server is not None:
                metrics_server.stop()
            if tracing is not None:
                await asyncio.to_thread(tracing.shutdown)

    app = FastAPI(
        title="Lightfuse",
        version=services.version,
        lifespan=lifespan,
        docs_url="/api/docs",
        openapi_url="/api/openapi.json",
        redoc_url=None,
    )
    app.state.services = services
    install_error_handlers(app)
    # a write that failed for lack of space, on any route: 503 + Retry-After (api/health.py)
    app.add_exception_handler(StoreFull, health.store_full_handler)
    for module in (
        health,
        ingestion,
        otel,
        projects,
        traces,
        observations,
        sessions,
        metrics,
        scores,
        score_configs,
        models,
        prompts,
        datasets,
        experiments,
        media,
        comments,
        annotation_queues,
        scim,
        llm_connections,
        organizations,
        integrations,
        admin,
    ):
        app.include_router(module.router)
    install_web(app, services)
    # outermost: every request is counted and timed, and ingestion bodies are admitted before being read
    app.add_middleware(ObservabilityMiddleware, metrics=services.metrics, budget=services.budget)
    tracing = None
    if services.settings.otel_exporter_otlp_endpoint:
        from lightfuse.services.operations import (
            self_tracing as ops_tracing,  # OpenTelemetry's SDK is loaded only when asked for
        )

        tracing = ops_tracing.install(
            app,
            services.engine,
            endpoint=services.settings.otel_exporter_otlp_endpoint,
            service_name=services.settings.otel_service_name,
            sampling_ratio=services.settings.otel_trace_sampling_ratio,
        )
    return app
