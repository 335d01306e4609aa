"""Process-wide runtime helpers: the OS-level names of the server's own threads."""

from __future__ import annotations

import threading
from pathlib import Path

from lightfuse.runtime import name_os_thread
from lightfuse.services.ingestion.pipeline import IngestionPipeline
from lightfuse.services.pricing.model_registry import ModelRegistry
from lightfuse.store.sql import migrate
from lightfuse.store.sql.database import make_engine


def _comm(native_id: int) -> str:
    return Path(f"/proc/self/task/{native_id}/comm").read_text().strip()


def test_a_thread_names_itself_for_the_os_and_long_names_are_cut_to_the_kernels_15_characters():
    seen = {}

    def run():
        name_os_thread("lf-a-rather-long-thread-name")
        seen["comm"] = _comm(threading.get_native_id())

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    assert seen["comm"] == "lf-a-rather-lon"
    assert _comm(threading.get_native_id()) != "lf-a-rather-lon"  # only the calling thread was renamed


def test_the_writer_and_the_wal_checkpointer_show_under_their_own_names(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'n.db'}")
    migrate.upgrade(engine)
    pipeline = IngestionPipeline(engine, ModelRegistry(engine).price_book)
    pipeline.start()
    # this pipeline's own threads: other tests' engines may have left checkpointers of the same name running
    threads = {"writer": pipeline._thread, "checkpointer": pipeline._checkpointer._thread}
    try:
        names = {}
        for _ in range(250):  # each thread names itself as it starts
            names = {role: _comm(t.native_id) for role, t in threads.items()}
            if names == {"writer": "lf-writer", "checkpointer": "lf-checkpoint"}:
                break
            threading.Event().wait(0.02)
        assert names == {"writer": "lf-writer", "checkpointer": "lf-checkpoint"}
    finally:
        pipeline.stop()
        engine.dispose()
