"""CPU cost per span of each stage of OTLP ingestion, in-process and single-threaded.

Builds the payload of ../shared/bench/otlp_load.py (4 spans per trace, 25 traces per request), then runs the
stages the server runs for each request, one after the other, and prints CPU microseconds per span:

  decode    protobuf -> normalised span dicts           (ingest/otlp_decode.py)
  map       span dicts -> Langfuse events                (ingest/otlp_mapping.py)
  validate  events -> ValidEvents                        (services/ingestion/events.py)
  write     the writer's group commits, 8 requests each  (services/ingestion/pipeline.py, SQLite file), and
            of that the part spent in the driver's execute and commit calls (SQLite's own work, binding
            included) against the writer's Python
  handback  unpickling an export's validated events: what the server pays per span when a decode helper
            process did decode, map and validate (services/ingestion/otlp_offload.py)

It also prints a fixed pure-Python loop's time, so figures from machines of different speed can be compared.
CPU time (time.process_time) rather than wall time keeps other processes on the machine out of the figures.
The end-to-end benchmark is ingest_bench.py --otlp; this one says where the time goes.

usage: python bench/otlp_stages.py [--requests N]
"""

from __future__ import annotations

import argparse
import os
import pickle
import shutil
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import event

from lightfuse.app import Services, build_services
from lightfuse.config import Settings
from lightfuse.ingest.otlp_decode import decode_export
from lightfuse.ingest.otlp_mapping import spans_to_events
from lightfuse.runtime import settle_heap
from lightfuse.services.ingestion.events import ValidEvent, validate_event
from lightfuse.services.ingestion.pipeline import _Submission

ROOT = Path(__file__).resolve().parent.parent
LOAD_GENERATOR = ROOT.parent / "shared" / "bench" / "otlp_load.py"
PER_COMMIT = 8  # the load generator's 8 clients end up in one group commit


def payloads(requests: int, traces_per_request: int = 25) -> list[bytes]:
    # otlp_load.py runs its load when imported; take its span builders without the final asyncio.run(main())
    source = LOAD_GENERATOR.read_text().replace("asyncio.run(main())", "")
    namespace: dict = {}
    exec(compile(source, str(LOAD_GENERATOR), "exec"), namespace)  # noqa: S102 - our own shared bench file
    make_request, make_trace = namespace["make_request"], namespace["make_trace"]
    per = traces_per_request
    return [make_request([make_trace(i * per + k) for k in range(per)]) for i in range(requests)]


class DriverClock:
    """CPU seconds spent inside the DB driver's execute and commit calls while the block runs."""

    def __init__(self, engine) -> None:
        self.engine = engine
        self.seconds = 0.0
        self._started = 0.0

    def _before(self, *_args) -> None:
        self._started = time.process_time()

    def _after(self, *_args) -> None:
        self.seconds += time.process_time() - self._started

    def __enter__(self) -> DriverClock:
        event.listen(self.engine, "before_cursor_execute", self._before)
        event.listen(self.engine, "after_cursor_execute", self._after)
        dialect = self.engine.dialect
        commit = dialect.do_commit

        def timed_commit(dbapi_connection) -> None:  # no SQLAlchemy event wraps the commit call itself
            self._before()
            commit(dbapi_connection)
            self._after()

        dialect.do_commit = timed_commit
        return self

    def __exit__(self, *_exc) -> None:
        event.remove(self.engine, "before_cursor_execute", self._before)
        event.remove(self.engine, "after_cursor_execute", self._after)
        del self.engine.dialect.do_commit  # back to the class's method


def reference_loop() -> float:
    """Seconds of CPU for a fixed pure-Python loop: the machine's speed, for comparing figures."""
    start = time.process_time()
    total = 0
    for i in range(5_000_000):
        total += i
    return time.process_time() - start


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=200)
    a = ap.parse_args()

    data_dir = tempfile.mkdtemp(prefix="lightfuse-stages-")
    os.environ.update(
        LIGHTFUSE_DATA_DIR=data_dir, LANGFUSE_INIT_ORG_ID="bench", LANGFUSE_INIT_PROJECT_ID="bench"
    )
    services = build_services(Settings())
    try:
        run(services, payloads(a.requests))
    finally:
        services.engine.dispose()
        shutil.rmtree(data_dir, ignore_errors=True)
    return 0


def run(services: Services, bodies: list[bytes]) -> None:
    spans = len(bodies) * 100
    now = int(time.time() * 1000)

    def per_span(stage):
        # The server holds a few requests' objects at a time, this bench all of them: freeze what earlier
        # stages built so the cyclic GC does not walk it again, and collect as `serve` does.
        settle_heap()
        start = time.process_time()
        out = stage()
        return (time.process_time() - start) / spans * 1e6, out

    decode_us, decoded = per_span(lambda: [decode_export(b, "application/x-protobuf", None) for b in bodies])
    map_us, mapped = per_span(lambda: [spans_to_events(d, now) for d in decoded])
    validate_us, validated = per_span(
        lambda: [[validate_event(e, "project", epoch_ms_times=True) for e in events] for events in mapped]
    )
    assert all(isinstance(e, ValidEvent) for events in validated for e in events)
    pickled = [pickle.dumps(events, protocol=pickle.HIGHEST_PROTOCOL) for events in validated]
    handback_us, _ = per_span(lambda: [pickle.loads(p) for p in pickled])

    driver = DriverClock(services.engine)

    def write() -> None:
        # the writer's own commit step, without its thread: one group commit per PER_COMMIT requests
        for i in range(0, len(validated), PER_COMMIT):
            services.pipeline._commit(
                [_Submission("bench", events) for events in validated[i : i + PER_COMMIT]]
            )

    with driver:
        write_us, _ = per_span(write)
    sqlite_us = driver.seconds / spans * 1e6
    total = decode_us + map_us + validate_us + write_us
    print(f"spans={spans} reference_loop_s={reference_loop():.3f}")
    print(
        f"decode={decode_us:.1f} map={map_us:.1f} validate={validate_us:.1f} write={write_us:.1f} "
        f"total={total:.1f} us/span (CPU); handback={handback_us:.1f} (server side, with a decode helper)"
    )
    print(
        f"write: sqlite={sqlite_us:.1f} (execute and commit calls, binding included) "
        f"python={write_us - sqlite_us:.1f} us/span"
    )


if __name__ == "__main__":
    sys.exit(main())
