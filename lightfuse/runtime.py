"""Process-wide runtime tuning shared by the server process and its helper processes."""

from __future__ import annotations

import gc
import threading


def settle_heap() -> None:
    """Call once start-up is done: freeze what was built so far and make the cyclic GC collect less often.

    Everything built at start-up (routes, the price table, SQLAlchemy's metadata, the decoder's imports) lives
    as long as the process. Freezing it keeps the cyclic GC's full collections from walking it again and again
    under load: they were the ingestion p99 (bench/ingest_bench.py: p99 70-89 ms -> 39-44 ms at the same
    throughput).

    Under ingestion load the youngest generation also filled every few hundred allocations, and each collection
    walked the events then in flight (waiting for the writer) again: 2,500 collections and ~0.5 s of GIL-held
    CPU per 80,000 OTLP spans. Collecting it every 10,000 container allocations took ~0.18 s for the same load
    (bench/ingest_bench.py --otlp, measured with gc.callbacks); the memory this holds back is small.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)


def name_os_thread(name: str) -> None:
    """Give the calling thread a name the operating system shows (Linux: ``top -H``, ``ps -L``, /proc).

    CPython 3.11 names every thread after the process, so a busy server shows as one "python"; with this its
    own long-lived threads show as themselves, and bench/ingest_bench.py splits the server's CPU by thread.
    Best effort: the kernel keeps 15 characters, and where /proc is missing nothing happens.
    """
    try:
        with open(f"/proc/self/task/{threading.get_native_id()}/comm", "w") as comm:
            comm.write(name[:15])
    except OSError:
        pass
