"""Lightfuse's own Prometheus metrics: one registry per app, read by ``/metrics``.

Contract:
* ``OpsMetrics()`` holds its own ``CollectorRegistry`` (never the process-global one), so two apps in one
  process (tests) never collide; ``render()`` is the Prometheus text of everything registered.
* The ingestion hot path pays at most a few counter increments per committed *batch*: the writer sums usage,
  cost and event counts per batch in a ``BatchTally`` and ``record_commit`` applies it after the commit.
* Label cardinality is bounded: HTTP by route template (``"<unmatched>"`` for a path no route has), events by
  the validated event type, business metrics by project id, model and environment, where models and
  environments past ``max_label_values`` distinct values per label fold into ``"other"``.
* Gauges that mirror live state (writer backlog, held intake bytes, the database pool, store writability) are
  read at scrape time through callbacks given to ``watch_*``, so nothing updates them on the hot path.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

__all__ = ["BatchTally", "OpsMetrics", "OTHER"]

OTHER = "other"
DEFAULT_MAX_LABEL_VALUES = 200

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_BATCH_BUCKETS = (1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000)
_LAG_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400)


@dataclass
class _Usage:
    generations: int = 0
    input_tokens: float = 0
    output_tokens: float = 0
    total_tokens: float = 0
    cost: float = 0


@dataclass
class BatchTally:
    """What one commit stored, summed by the writer while it merges, applied by ``record_commit`` after the
    commit succeeded (a rolled-back commit's tally is dropped with it)."""

    events: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    usage: dict[tuple[str, str, str], _Usage] = field(default_factory=dict)
    # project id -> the newest event timestamp (epoch ms) of this commit: the ingestion lag
    newest_event_ms: dict[str, int] = field(default_factory=dict)

    def add_observation(self, project_id: str, row: dict, stored: dict | None) -> None:
        """Count a merged observation row: a new generation once, usage and cost as the increase over the
        stored row (an update that lowers them adds nothing: counters only grow)."""
        model = row.get("provided_model_name")
        is_generation = row.get("type") == "GENERATION"
        usage = row.get("usage_details") or {}
        cost = row.get("total_cost")
        if not is_generation and not usage and cost is None:
            return
        old_usage = (stored.get("usage_details") or {}) if stored else {}
        old_cost = (stored.get("total_cost") or 0) if stored else 0
        key = (
            project_id,
            model if isinstance(model, str) and model else "",
            row.get("environment") or "default",
        )
        tally = self.usage.get(key)
        if tally is None:
            tally = self.usage[key] = _Usage()
        if is_generation and stored is None:
            tally.generations += 1
        tally.input_tokens += max(0, _num(usage.get("input")) - _num(old_usage.get("input")))
        tally.output_tokens += max(0, _num(usage.get("output")) - _num(old_usage.get("output")))
        tally.total_tokens += max(0, _num(usage.get("total")) - _num(old_usage.get("total")))
        tally.cost += max(0.0, _num(cost) - _num(old_cost))


def _num(value: object) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


class _LabelCap:
    """The first ``limit`` distinct values of a label pass; later ones become ``"other"``."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, value: str) -> str:
        if value in self._seen:
            return value
        with self._lock:
            if len(self._seen) < self._limit:
                self._seen.add(value)
                return value
        return OTHER


Reader = Callable[[], Iterable[tuple[tuple[str, ...], float]]]


class _CallbackGauges(Collector):
    """Values read at scrape time: (family type, name, help, labels, callback -> (label values, value)s)."""

    def __init__(self) -> None:
        self._gauges: list[tuple[type, str, str, list[str], Reader]] = []

    def add(self, family: type, name: str, doc: str, labels: list[str], read: Reader) -> None:
        self._gauges.append((family, name, doc, labels, read))

    def collect(self):
        for family_type, name, doc, labels, read in self._gauges:
            family = family_type(name, doc, labels=labels)
            try:
                for label_values, value in read():
                    family.add_metric(list(label_values), value)
            except Exception:  # a scrape must never fail because one source is unavailable
                continue
            yield family


class OpsMetrics:
    def __init__(self, max_label_values: int = DEFAULT_MAX_LABEL_VALUES) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        r = self.registry
        self._model_cap = _LabelCap(max_label_values)
        self._environment_cap = _LabelCap(max_label_values)
        self._gauges = _CallbackGauges()
        r.register(self._gauges)

        self.http_requests = Counter(
            "lightfuse_http_requests",
            "HTTP requests answered, by route template and status.",
            ["method", "route", "status"],
            registry=r,
        )
        self.http_duration = Histogram(
            "lightfuse_http_request_duration_seconds",
            "HTTP request latency, by route template.",
            ["method", "route"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.http_in_flight = Gauge(
            "lightfuse_http_requests_in_flight", "HTTP requests being answered.", registry=r
        )

        self.grpc_requests = Counter(
            "lightfuse_grpc_requests",
            "gRPC calls answered (OTLP/gRPC), by method and status code.",
            ["method", "code"],
            registry=r,
        )
        self.grpc_duration = Histogram(
            "lightfuse_grpc_request_duration_seconds",
            "gRPC call latency, by method.",
            ["method"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )

        self.ingestion_events = Counter(
            "lightfuse_ingestion_events",
            "Ingestion events by type and result: "
            "stored, invalid (4xx per event), refused (503), failed (500).",
            ["type", "result"],
            registry=r,
        )
        self.intake_refusals = Counter(
            "lightfuse_ingestion_refusals",
            "Ingestion requests answered 503, by reason.",
            ["reason"],
            registry=r,
        )
        self.commit_duration = Histogram(
            "lightfuse_writer_commit_duration_seconds",
            "Time the ingestion writer took for one group commit.",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.commit_batch = Histogram(
            "lightfuse_writer_batch_events", "Events per group commit.", buckets=_BATCH_BUCKETS, registry=r
        )
        self.commits = Counter("lightfuse_writer_commits", "Group commits by result.", ["result"], registry=r)
        self.ingestion_lag = Histogram(
            "lightfuse_ingestion_lag_seconds",
            "From the newest event timestamp of "
            "a request to its commit (clock skew and late SDK flushes included).",
            buckets=_LAG_BUCKETS,
            registry=r,
        )
        self.last_commit = Gauge(
            "lightfuse_writer_last_commit_timestamp_seconds",
            "Unix time of the last successful ingestion commit.",
            registry=r,
        )

        self.jobs = Counter("lightfuse_background_job_runs", "Background job runs.", ["job"], registry=r)
        self.job_errors = Counter(
            "lightfuse_background_job_errors", "Background job runs that failed.", ["job"], registry=r
        )
        self.job_duration = Histogram(
            "lightfuse_background_job_duration_seconds",
            "Background job run time.",
            ["job"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )

        labels = ["project_id", "model", "environment"]
        self.generations = Counter("lightfuse_llm_generations", "Generations stored.", labels, registry=r)
        self.tokens = Counter(
            "lightfuse_llm_tokens",
            "Tokens of stored observations (usage input, output, total).",
            [*labels, "kind"],
            registry=r,
        )
        self.cost = Counter(
            "lightfuse_llm_cost_usd",
            "Cost of stored observations in USD (provided or computed from the model's prices).",
            labels,
            registry=r,
        )

    # --- scrape-time gauges -----------------------------------------------------------------------------------

    def watch(self, name: str, doc: str, read: Callable[[], float], *, counter: bool = False) -> None:
        """A value read at scrape time (``counter``: a count kept elsewhere; ``name`` without ``_total``)."""
        family = CounterMetricFamily if counter else GaugeMetricFamily
        self._gauges.add(family, name, doc, [], lambda: [((), float(read()))])

    def watch_labelled(self, name: str, doc: str, labels: list[str], read: Reader) -> None:
        self._gauges.add(GaugeMetricFamily, name, doc, labels, read)

    # --- ingestion --------------------------------------------------------------------------------------------

    def count_events(self, counts: dict[str, int], result: str) -> None:
        for event_type, n in counts.items():
            if n:
                self.ingestion_events.labels(event_type, result).inc(n)

    def record_commit(self, seconds: float, events: int, tally: BatchTally | None, lags: list[float]) -> None:
        """One successful group commit: latency, size, stored events by type, usage and cost, lags."""
        self.commit_duration.observe(seconds)
        self.commit_batch.observe(events)
        self.commits.labels("ok").inc()
        self.last_commit.set(time.time())
        for lag in lags:
            self.ingestion_lag.observe(lag)
        if tally is None:
            return
        self.count_events(tally.events, "stored")
        for (project_id, model, environment), u in tally.usage.items():
            labels = (project_id, self._model_cap(model), self._environment_cap(environment))
            if u.generations:
                self.generations.labels(*labels).inc(u.generations)
            for kind, value in (
                ("input", u.input_tokens),
                ("output", u.output_tokens),
                ("total", u.total_tokens),
            ):
                if value:
                    self.tokens.labels(*labels, kind).inc(value)
            if u.cost:
                self.cost.labels(*labels).inc(u.cost)

    # --- background jobs --------------------------------------------------------------------------------------

    def timed_job(self, name: str, job: Callable):
        """``job`` wrapped to count its runs, errors and duration under ``job=name``."""

        def run(*args, **kwargs):
            started = time.perf_counter()
            self.jobs.labels(name).inc()
            try:
                return job(*args, **kwargs)
            except Exception:
                self.job_errors.labels(name).inc()
                raise
            finally:
                self.job_duration.labels(name).observe(time.perf_counter() - started)

        return run

    def render(self) -> bytes:
        return generate_latest(self.registry)
