"""The data directory is the owner's alone: after a real server start (SQLite + generated secrets) and a media
upload through the local blob store, every directory in it is 0700 and every file 0600, even with the
common 022 umask. An install left 0755/0644 by an older version is narrowed on the next start.
"""

from __future__ import annotations

import base64
import hashlib
import os
import stat
from pathlib import Path

import httpx
import pytest

from tests.conftest import make_server

pytestmark = pytest.mark.slow

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


def _modes(root: Path) -> dict[str, int]:
    found = {".": stat.S_IMODE(root.stat().st_mode)}
    for path in root.rglob("*"):
        found[str(path.relative_to(root))] = stat.S_IMODE(path.lstat().st_mode)
    return found


def _wrong(modes: dict[str, int], root: Path) -> dict[str, str]:
    return {
        name: oct(mode)
        for name, mode in modes.items()
        if mode != (0o700 if (root / name).is_dir() else 0o600)
    }


def _upload_media(srv) -> None:
    digest = base64.b64encode(hashlib.sha256(PNG).digest()).decode()
    body = {
        "traceId": "trace-1",
        "observationId": "obs-1",
        "field": "input",
        "contentType": "image/png",
        "contentLength": len(PNG),
        "sha256Hash": digest,
    }
    with httpx.Client(base_url=srv.url, auth=srv.auth, timeout=20) as client:
        created = client.post("/api/public/media", json=body)
        assert created.status_code == 201, created.text
        put = httpx.put(
            created.json()["uploadUrl"],
            content=PNG,
            timeout=20,
            headers={"Content-Type": "image/png", "x-amz-checksum-sha256": digest},
        )
        assert put.status_code == 200, put.text


@pytest.fixture
def umask_022():
    old = os.umask(0o022)  # the server process inherits it: the usual default, which gave 0755/0644 before
    try:
        yield
    finally:
        os.umask(old)


def test_data_dir_sqlite_files_secrets_and_media_are_owner_only(tmp_path, umask_022) -> None:
    srv = make_server(tmp_path, {})
    srv.start()
    try:
        _upload_media(srv)
        modes = _modes(srv.data_dir)
    finally:
        srv.stop()
    names = set(modes)
    assert {"lightfuse.db", "lightfuse.db-wal", "salt", "encryption_key", "nextauth_secret"} <= names, names
    assert any(name.startswith("media/") and (srv.data_dir / name).is_file() for name in names), names
    assert _wrong(modes, srv.data_dir) == {}


def test_an_older_world_readable_install_is_narrowed_on_start(tmp_path, umask_022) -> None:
    srv = make_server(tmp_path, {})
    srv.start()
    srv.stop()
    for path in [srv.data_dir, *srv.data_dir.rglob("*")]:  # what an older version left behind
        path.chmod(0o755 if path.is_dir() else 0o644)
    srv.start()
    try:
        modes = _modes(srv.data_dir)
    finally:
        srv.stop()
    assert _wrong(modes, srv.data_dir) == {}
