"""Composition root: build every service from the settings and wire them into one ASGI app."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

from fastapi import FastAPI
from sqlalchemy import Engine

from lightfuse import __version__
from lightfuse.api import (
    annotation_queues,
    comments,
    datasets,
    health,
    ingestion,
    media,
    metrics,
    models,
    observations,
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
from lightfuse.config import Settings
from lightfuse.services.accounts import AccountService
from lightfuse.services.annotations import AnnotationService
from lightfuse.services.auth import ApiKeyService
from lightfuse.services.dataset_runs import DatasetRunService
from lightfuse.services.datasets import DatasetService
from lightfuse.services.experiments import ExperimentAwareOtlpIngestor, ExperimentRecorder
from lightfuse.services.ingestion_pipeline import IngestionPipeline
from lightfuse.services.media import MediaService
from lightfuse.services.model_registry import ModelRegistry
from lightfuse.services.otel_ingest import OtlpIngestor
from lightfuse.services.otlp_offload import DecodeOffload
from lightfuse.services.project_purge import ProjectPurger
from lightfuse.services.prompts import PromptService
from lightfuse.services.storage_health import StorageHealth, StoreFull
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
    storage: StorageHealth
    version: str = __version__


def build_services(settings: Settings) -> Services:
    engine = make_engine(settings.sqlalchemy_url, sqlite_synchronous=settings.sqlite_synchronous)
    migrate.upgrade(engine)
    keys = ApiKeyService(engine, settings.salt or "")
    accounts = AccountService(engine, keys)
    models = ModelRegistry(engine)
    storage = StorageHealth(engine, settings.data_dir)
    pipeline = IngestionPipeline(
        engine, models.price_book, max_pending_events=settings.ingest_queue_max_events, health=storage
    )
    accounts.provision(settings.init)
    blobs = build_blob_store(settings)
    media = MediaService(engine, blobs, settings.encryption_key or settings.salt or "",
                         max_content_length=settings.media.max_content_length,
                         download_url_ttl=settings.media.download_url_expiry_seconds,
                         download_base_url=settings.media_download_base_url)
    # experiment spans also become dataset run items (services/experiments.py)
    otlp = ExperimentAwareOtlpIngestor(pipeline, ExperimentRecorder(engine),
                                       DecodeOffload(settings.otlp_decode_processes))
    return Services(settings, engine, keys, accounts, models, pipeline, otlp,
                    prompts=PromptService(engine), media=media, datasets=DatasetService(engine, media),
                    dataset_runs=DatasetRunService(engine), annotations=AnnotationService(engine),
                    purger=ProjectPurger(engine, blobs, grace_seconds=settings.project_purge_grace_seconds),
                    storage=storage)


def build_blob_store(settings: Settings) -> BlobStore:
    """S3 when LANGFUSE_S3_MEDIA_UPLOAD_BUCKET is set, else ``<data_dir>/media``."""
    media = settings.media
    if not media.bucket:
        return LocalDirectoryBlobStore(settings.data_dir / "media")
    from lightfuse.store.blobs.s3 import S3BlobStore  # boto3 is loaded only by deployments that use it

    secret = media.secret_access_key.get_secret_value() if media.secret_access_key else None
    return S3BlobStore(media.bucket, prefix=media.prefix, region=media.region, endpoint=media.endpoint,
                       access_key_id=media.access_key_id, secret_access_key=secret,
                       force_path_style=media.force_path_style)


def create_app(services: Services) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI):
        services.pipeline.start()
        # API keys' last use, recorded in memory per request, reaches the database every 30 s
        key_use = PeriodicDaemon("API key use", lambda _should_stop: services.keys.flush_last_used(),
                                 interval=30, first_delay=30)
        # deleted projects' data (services/project_purge.py): soon after start, then every interval
        interval = services.settings.project_purge_interval_seconds
        purge = PeriodicDaemon("project purge", services.purger.purge_due, interval=interval,
                               first_delay=min(interval, 10))
        key_use.start()
        purge.start()
        try:
            yield
        finally:
            await key_use.stop()
            await purge.stop()
            # drain: every acknowledged event is already committed, this finishes what is queued
            await asyncio.to_thread(services.pipeline.stop)
            await asyncio.to_thread(services.otlp.close)
            services.keys.flush_last_used()

    app = FastAPI(title="Lightfuse", version=services.version, lifespan=lifespan, docs_url="/api/docs",
                  openapi_url="/api/openapi.json", redoc_url=None)
    app.state.services = services
    install_error_handlers(app)
    # a write that failed for lack of space, on any route: 503 + Retry-After (api/health.py)
    app.add_exception_handler(StoreFull, health.store_full_handler)
    for module in (health, ingestion, otel, projects, traces, observations, sessions, metrics, scores, score_configs,
                   models, prompts, datasets, media, comments, annotation_queues, scim):
        app.include_router(module.router)
    install_web(app, services)
    return app
