"""Dataset runs from OpenTelemetry: the current SDKs' ``run_experiment`` never calls the run-item API.

Instead every span of an experiment item carries ``langfuse.experiment.*`` attributes: the experiment id and
(run) name, the dataset id, the dataset item id and the id of the item's root observation (the task span).
Langfuse turns those into dataset run items while ingesting; Lightfuse does the same here, after the spans are
committed: one run item per (run, dataset item, trace), taken from the span that is the item's root
observation. The run is created on first sight with the SDK's experiment id, so run-level scores the SDK
posts with ``datasetRunId = experiment id`` belong to it.

Recording is idempotent (run item ids are derived from run, item and trace), so a re-sent export adds nothing.
A failure here is logged, never turned into an OTLP error: the spans themselves are already stored.
"""

from __future__ import annotations

import asyncio
import gzip
import logging
import zlib
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Engine

from lightfuse.ingest.otlp_decode import decode_export
from lightfuse.services.common.clock import now_ms
from lightfuse.services.datasets.runs import ensure_run, run_item_id
from lightfuse.services.ingestion.events import ValidEvent
from lightfuse.services.ingestion.otlp_intake import OtlpIngestor
from lightfuse.services.ingestion.otlp_offload import DecodeOffload
from lightfuse.services.ingestion.pipeline import IngestionPipeline
from lightfuse.store.sql import datasets as store
from lightfuse.store.sql.transactions import write_transaction

log = logging.getLogger(__name__)

_PREFIX = "langfuse.experiment."
_MARKER = b"langfuse.experiment.dataset.id"


@dataclass(frozen=True)
class ExperimentLink:
    experiment_id: str
    run_name: str
    description: str | None
    metadata: dict[str, Any] | None
    dataset_id: str
    dataset_item_id: str
    trace_id: str
    observation_id: str
    start_ms: int | None


def _metadata(attrs: dict[str, Any]) -> dict[str, Any] | None:
    out: dict[str, Any] = {}
    raw = attrs.get(_PREFIX + "metadata")
    if isinstance(raw, str):
        try:
            parsed = orjson.loads(raw)
        except orjson.JSONDecodeError:
            parsed = None
        if isinstance(parsed, dict):
            out.update(parsed)
    dotted = _PREFIX + "metadata."
    out.update({k[len(dotted) :]: v for k, v in attrs.items() if k.startswith(dotted)})
    return out or None


def experiment_links(resource_spans: list[dict]) -> list[ExperimentLink]:
    """The dataset run items an export describes (spans of dataset-backed experiment items only)."""
    links: list[ExperimentLink] = []
    for resource in resource_spans:
        for scope in resource.get("scopeSpans", ()):
            for span in scope.get("spans", ()):
                attrs = span.get("attributes") or {}
                raw = [attrs.get(_PREFIX + k) for k in ("id", "name", "dataset.id", "item.id")]
                values = [v for v in raw if isinstance(v, str) and v]
                if len(values) != len(raw):
                    continue
                root = attrs.get(_PREFIX + "item.root_observation_id")
                # one link per item: the span the SDK names as the item's root, else a root span
                if (root and span["spanId"] != root) or (not root and span.get("parentSpanId")):
                    continue
                description = attrs.get(_PREFIX + "description")
                start = span.get("startTimeUnixNano")
                links.append(
                    ExperimentLink(
                        experiment_id=values[0],
                        run_name=values[1],
                        dataset_id=values[2],
                        dataset_item_id=values[3],
                        description=description if isinstance(description, str) else None,
                        metadata=_metadata(attrs),
                        trace_id=span["traceId"],
                        observation_id=span["spanId"],
                        start_ms=start // 1_000_000 if isinstance(start, int) else None,
                    )
                )
    return links


class ExperimentRecorder:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def record(self, project_id: str, links: list[ExperimentLink]) -> int:
        """Store the runs and run items; -> how many links belonged to a dataset of the project."""
        now = now_ms()
        stored = 0
        with write_transaction(self._engine) as conn:
            runs: dict[tuple[str, str], dict[str, Any] | None] = {}
            rows = []
            for link in links:
                key = (link.dataset_id, link.run_name)
                if key not in runs:
                    if store.get_dataset(conn, project_id, link.dataset_id) is None:
                        runs[key] = None  # not a dataset of this project: nothing to link to
                        continue
                    new_run = ensure_run(
                        conn, project_id, link.dataset_id, link.run_name, now, preferred_id=link.experiment_id
                    )
                    changes = {
                        k: v
                        for k, v in (("description", link.description), ("metadata", link.metadata))
                        if v is not None and new_run.get(k) != v
                    }
                    if changes:
                        store.update_run(conn, new_run["id"], {**changes, "updated_at": now})
                    runs[key] = new_run
                run = runs[key]
                if run is None:
                    continue
                stored += 1
                rows.append(
                    {
                        "id": run_item_id(project_id, run["id"], link.dataset_item_id, link.trace_id),
                        "project_id": project_id,
                        "dataset_run_id": run["id"],
                        "dataset_id": link.dataset_id,
                        "dataset_item_id": link.dataset_item_id,
                        "trace_id": link.trace_id,
                        "observation_id": link.observation_id,
                        "created_at": link.start_ms or now,
                        "updated_at": now,
                    }
                )
            store.insert_run_items(conn, rows, ignore_existing=True)
        return stored


def _mentions_experiment(body: bytes, content_encoding: str | None) -> bool:
    """A cheap look for the attribute key before decoding the export a second time (keys are plain text in
    both OTLP encodings). The body already decoded once, so decompressing it cannot surprise us."""
    encoding = (content_encoding or "").strip().lower()
    try:
        if encoding == "gzip":
            body = gzip.decompress(body)
        elif encoding == "deflate":
            try:
                body = zlib.decompress(body)
            except zlib.error:
                body = zlib.decompress(body, -zlib.MAX_WBITS)
        elif encoding not in ("", "identity"):
            return True
    except (OSError, zlib.error, EOFError):
        return True
    return _MARKER in body


class _EventsWithLinks(list):
    """The validated events of an export, carrying its experiment links to ``ingest``."""

    experiment_links: list[ExperimentLink]


class ExperimentAwareOtlpIngestor(OtlpIngestor):
    """``OtlpIngestor`` that also records dataset run items once the export's spans are committed."""

    def __init__(
        self, pipeline: IngestionPipeline, recorder: ExperimentRecorder, offload: DecodeOffload | None = None
    ) -> None:
        super().__init__(pipeline, offload)
        self._recorder = recorder

    def to_events(
        self, project_id: str, body: bytes, content_type: str, content_encoding: str | None
    ) -> list[ValidEvent]:
        events = super().to_events(project_id, body, content_type, content_encoding)
        if events and _mentions_experiment(body, content_encoding):
            links = experiment_links(decode_export(body, content_type, content_encoding))
            if links:
                tagged = _EventsWithLinks(events)
                tagged.experiment_links = links
                return tagged
        return events

    async def ingest(self, project_id: str, events: list[ValidEvent]) -> dict[str, str]:
        failures = await super().ingest(project_id, events)
        links = getattr(events, "experiment_links", None)
        if links and not failures:
            try:
                await asyncio.to_thread(self._recorder.record, project_id, links)
            except Exception:  # pragma: no cover - logged; the spans are stored regardless
                log.exception("could not record dataset run items of an experiment export")
        return failures
