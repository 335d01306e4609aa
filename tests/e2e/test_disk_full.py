"""Fault test: the embedded store's disk fills up under ingestion load, then space comes back.

A small tmpfs is mounted for the test (we run as root; the test is skipped, saying why, only if the mount is
refused). It holds the server's data directory (the SQLite database, the media blobs) and, on Postgres, a
tablespace that holds the test's database (the local server's WAL stays on its own disk, so it is the data files
that cannot grow: SQLSTATE 53100). Expected while full: every ingestion request is answered as a whole - a
207 whose events all succeeded, or 503 + Retry-After (never a 207 with per-event 500s); OTLP and media uploads
get 503 too; /ready says 503 and /metrics says the store is not writable; reads keep working. After a filler
file is deleted the server recovers by itself, the refused requests succeed when retried, and every
acknowledged event is stored. The counts are printed (run with -s) and recorded as junit properties.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from tests.conftest import PG_ADMIN_URL, make_server
from tests.e2e.test_otlp_bad_input import json_export, json_span

pytestmark = pytest.mark.slow

TMPFS_MIB = {"sqlite": 8, "postgres": 24}  # a new Postgres database is a ~7.5 MB copy of template1
# what the filler leaves free once the server has started: a few dozen batches fill it
LEFT_FREE = 1536 * 1024


def _mount_tmpfs(path: Path, mib: int) -> None:
    path.mkdir(mode=0o755)
    # mode: Postgres's own user must reach its tablespace directory inside
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={mib}m,mode=0755", "tmpfs", str(path)],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        path.rmdir()
        pytest.skip(
            f"cannot mount a tmpfs for the full-disk test (needs root / CAP_SYS_ADMIN): "
            f"{result.stderr.strip()}"
        )


def _admin(sql: str) -> None:
    engine = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql(sql)
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def small_disk(request, tmp_path):
    """-> (backend settings for make_server, the mount point); the data directory lives on the small disk."""
    mount = Path(
        f"/tmp/lf-small-disk-{uuid.uuid4().hex[:8]}"
    )  # not under tmp_path (0700: Postgres can't enter)
    _mount_tmpfs(mount, TMPFS_MIB[request.param])
    (mount / "data").mkdir()
    (tmp_path / "server-data").symlink_to(mount / "data")  # make_server's data directory
    name = f"lf_test_full_{uuid.uuid4().hex[:8]}"
    try:
        if request.param == "sqlite":
            yield {"data_dir": tmp_path / "server-data"}, mount
            return
        (mount / "pg").mkdir()
        shutil.chown(mount / "pg", "postgres", "postgres")
        _admin(f"CREATE TABLESPACE {name} LOCATION '{mount / 'pg'}'")
        try:
            _admin(f'CREATE DATABASE "{name}" TABLESPACE {name}')
            url = (
                PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql+psycopg://", "postgresql://") + "/" + name
            )
            yield (
                {
                    "data_dir": tmp_path / "server-data",
                    "database_url": url,
                    "salt": "test-salt",
                    "nextauth_secret": "test-secret",
                },
                mount,
            )
        finally:
            _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            _admin(f"DROP TABLESPACE IF EXISTS {name}")
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)
        mount.rmdir()


def _free_bytes(path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def _write_filler(path, keep_free: int) -> None:
    with open(path, "wb") as out:
        size = max(0, _free_bytes(path.parent) - keep_free)
        chunk = b"\xa5" * (64 * 1024)
        while size > 0:
            out.write(chunk[: min(size, len(chunk))])
            size -= len(chunk)
        out.flush()
        os.fsync(out.fileno())


def _batch(n: int) -> list[dict]:
    return [
        {
            "id": str(uuid.uuid4()),
            "type": "trace-create",
            "timestamp": "2026-01-01T00:00:00.000Z",
            "body": {"id": str(uuid.uuid4()), "name": "disk-full", "input": os.urandom(1500).hex()},
        }
        for _ in range(n)
    ]


def _otlp_export(trace_hex: str, span_ids: list[str]) -> dict:
    """As large as an ingestion batch: a tiny export may still fit in the last free pages of a full disk."""
    spans = []
    for span_hex in span_ids:
        span = json_span(trace_hex, span_hex)
        span["attributes"].append(
            {"key": "langfuse.observation.input", "value": {"stringValue": os.urandom(1500).hex()}}
        )
        spans.append(span)
    return json_export(*spans)


def _sha(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def _stored_trace_ids(c: httpx.Client) -> set[str]:
    ids: set[str] = set()
    for page in range(1, 1000):
        r = c.get("/api/public/traces", params={"limit": 100, "page": page})
        assert r.status_code == 200, r.text
        data = r.json()["data"]
        ids.update(t["id"] for t in data)
        if len(data) < 100:
            return ids
    raise AssertionError("too many pages")


def test_full_disk_refuses_with_503_and_recovers_without_loss(tmp_path, small_disk, record_property):
    backend, mount = small_disk
    server = make_server(tmp_path, backend)
    try:
        server.start()
        _run(server, mount, record_property, "postgres" if backend.get("database_url") else "sqlite")
    finally:
        server.stop()


def _run(server, mount: Path, record_property, kind: str) -> None:
    acked: set[str] = set()  # trace ids whose event got a 201 inside a 207
    refused: list[list[dict]] = []  # batches answered 503, retried after recovery
    partial_failures: list[dict] = []
    c = httpx.Client(base_url=server.url, auth=server.auth, timeout=60)

    def send(batch: list[dict]) -> httpx.Response:
        r = c.post("/api/public/ingestion", json={"batch": batch})
        if r.status_code == 207:
            body = r.json()
            partial_failures.extend(body["errors"])
            ok = {s["id"] for s in body["successes"]}
            acked.update(ev["body"]["id"] for ev in batch if ev["id"] in ok)
        return r

    # before the disk fills: some stored traces to read later, and a media upload URL to use while full
    assert send(_batch(20)).status_code == 207
    blob = os.urandom(512 * 1024)
    created = c.post(
        "/api/public/media",
        json={
            "traceId": "t-media",
            "field": "input",
            "contentType": "application/octet-stream",
            "contentLength": len(blob),
            "sha256Hash": _sha(blob),
        },
    )
    assert created.status_code == 201, created.text

    filler = mount / "filler.bin"
    _write_filler(filler, LEFT_FREE)

    # load until full: the first 503 ends this phase; every other answer must be a clean 207
    full_answer = None
    for _ in range(500):
        batch = _batch(25)
        r = send(batch)
        if r.status_code == 503:
            refused.append(batch)
            full_answer = r
            break
        assert r.status_code == 207, (r.status_code, r.text)
        assert partial_failures == [], f"a 207 with failed events instead of a 503: {partial_failures[:2]}"
    assert full_answer is not None, "the store never filled up"
    assert full_answer.headers.get("Retry-After", "").isdigit(), full_answer.headers
    assert full_answer.json()["error"] == "ServiceUnavailableError"
    assert partial_failures == [], partial_failures[:3]

    # still full: more batches, an OTLP export and the media bytes are all refused as a whole
    for _ in range(5):
        batch = _batch(25)
        r = send(batch)
        assert r.status_code == 503 and r.headers.get("Retry-After"), (r.status_code, r.text)
        refused.append(batch)
    trace_hex = uuid.uuid4().hex
    export = _otlp_export(trace_hex, [uuid.uuid4().hex[:16] for _ in range(25)])
    otlp = c.post("/api/public/otel/v1/traces", json=export)
    assert otlp.status_code == 503 and otlp.headers.get("Retry-After"), (otlp.status_code, otlp.text)
    put = httpx.put(
        created.json()["uploadUrl"],
        content=blob,
        timeout=60,
        headers={"Content-Type": "application/octet-stream", "x-amz-checksum-sha256": _sha(blob)},
    )
    assert put.status_code == 503 and put.headers.get("Retry-After"), (put.status_code, put.text)

    ready = c.get("/api/public/ready")
    assert ready.status_code == 503, ready.text
    # past the probe interval (2 s) /ready probes with a write of its own: still full, still 503
    for _ in range(6):
        time.sleep(0.5)
        assert c.get("/api/public/ready").status_code == 503
    assert "lightfuse_store_writable 0" in c.get("/metrics").text

    # reads keep working
    some = sorted(acked)[:5]
    for trace_id in some:
        assert c.get(f"/api/public/traces/{trace_id}").status_code == 200
    assert c.get("/api/public/traces", params={"limit": 5}).status_code == 200

    # space comes back: the server notices by itself (the readiness probe), nothing restarted
    filler.unlink()
    deadline = time.monotonic() + 60
    while c.get("/api/public/ready").status_code != 200:
        assert time.monotonic() < deadline, "the server did not become ready again"
        time.sleep(0.5)
    assert "lightfuse_store_writable 1" in c.get("/metrics").text

    # the refused requests succeed when retried, and so do OTLP and the media upload
    rejected = sum(len(b) for b in refused)
    for batch in refused:
        r = send(batch)
        assert r.status_code == 207 and not r.json()["errors"], (r.status_code, r.text)
    otlp = c.post("/api/public/otel/v1/traces", json=export)
    assert otlp.status_code == 200, otlp.text
    put = httpx.put(
        created.json()["uploadUrl"],
        content=blob,
        timeout=60,
        headers={"Content-Type": "application/octet-stream", "x-amz-checksum-sha256": _sha(blob)},
    )
    assert put.status_code == 200, put.text

    stored = _stored_trace_ids(c)
    missing = acked - stored
    line = (
        f"FAULT disk-full ({kind} on a {TMPFS_MIB[kind]} MiB tmpfs): acknowledged={len(acked)} "
        f"stored={len(acked & stored)} rejected={rejected} (all re-sent and stored after recovery)"
    )
    print("\n" + line)
    record_property("fault_disk_full", line)
    assert missing == set()
    assert c.get(f"/api/public/traces/{trace_hex}").status_code == 200
    c.close()
