"""Media on S3 (SeaweedFS) through a served Lightfuse configured with Langfuse's LANGFUSE_S3_MEDIA_* variables.

The upload and download URLs are S3 presigned URLs: the client talks to the bucket, not to Lightfuse. Covers
the raw HTTP flow on SQLite and Postgres, and the real SDKs (2.x over the ingestion API, 5.x over OTLP).
"""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import time
from datetime import datetime
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.conftest import ROOT, client_python, make_server

pytestmark = pytest.mark.slow

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
DOWNLOAD_TTL = 120
MAX_LENGTH = 100_000


def sha(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


@pytest.fixture
def s3_server(tmp_path, backend, s3_bucket):
    srv = make_server(
        tmp_path,
        backend,
        **s3_bucket.env(),
        LANGFUSE_S3_MEDIA_DOWNLOAD_URL_EXPIRY_SECONDS=str(DOWNLOAD_TTL),
        LANGFUSE_S3_MEDIA_MAX_CONTENT_LENGTH=str(MAX_LENGTH),
    )
    srv.start()
    try:
        yield srv, s3_bucket
    finally:
        srv.stop()


def _request_upload(srv, data: bytes = PNG, **overrides) -> httpx.Response:
    body = {
        "traceId": "trace-1",
        "observationId": "obs-1",
        "field": "input",
        "contentType": "image/png",
        "contentLength": len(data),
        "sha256Hash": sha(data),
        **overrides,
    }
    return httpx.post(f"{srv.url}/api/public/media", json=body, auth=srv.auth)


def _put(url: str, data: bytes = PNG, **headers) -> httpx.Response:
    # the headers the Langfuse SDKs send; no Basic auth: the URL is the credential
    sent = {"Content-Type": "image/png", "x-amz-checksum-sha256": sha(data)} | headers
    return httpx.put(url, content=data, headers=sent)


def _report(srv, media_id: str, status: int = 200, error: str | None = None) -> httpx.Response:
    body = {
        "uploadedAt": "2024-06-01T00:00:00Z",
        "uploadHttpStatus": status,
        "uploadHttpError": error,
        "uploadTimeMs": 7,
    }
    return httpx.patch(f"{srv.url}/api/public/media/{media_id}", json=body, auth=srv.auth)


def _get_media(srv, media_id: str) -> httpx.Response:
    return httpx.get(f"{srv.url}/api/public/media/{media_id}", auth=srv.auth)


def test_upload_report_download_over_presigned_s3_urls(s3_server):
    srv, bucket = s3_server
    created = _request_upload(srv)
    assert created.status_code == 201, created.text
    media_id, upload_url = created.json()["mediaId"], created.json()["uploadUrl"]
    object_key = f"{bucket.prefix}{srv.project_id}/{media_id}.png"
    assert upload_url.startswith(f"{bucket.endpoint}/{bucket.bucket}/{object_key}?")
    query = parse_qs(urlsplit(upload_url).query)
    assert query["X-Amz-SignedHeaders"] == ["content-length;content-type;host;x-amz-checksum-sha256"]
    assert bucket.secret_access_key not in upload_url

    # S3 itself refuses what the URL was not issued for
    assert _put(upload_url, **{"Content-Type": "image/jpeg"}).status_code == 403
    assert (
        _put(upload_url, bytes([PNG[0] ^ 1]) + PNG[1:], **{"x-amz-checksum-sha256": sha(PNG)}).status_code
        == 400
    )
    assert bucket.keys() == []

    assert _put(upload_url).status_code == 200
    assert bucket.keys() == [object_key]
    # nothing went to the local media directory
    assert not (srv.data_dir / "media").exists() or not any((srv.data_dir / "media").rglob("*.png"))

    # as in Langfuse, the SDK's report is what marks the upload done
    assert _get_media(srv, media_id).status_code == 404
    assert _report(srv, media_id).status_code == 200
    info = _get_media(srv, media_id).json()
    assert info["contentType"] == "image/png" and info["contentLength"] == len(PNG)
    assert info["uploadedAt"] == "2024-06-01T00:00:00.000Z"
    assert info["url"].startswith(f"{bucket.endpoint}/{bucket.bucket}/{object_key}?")
    assert parse_qs(urlsplit(info["url"]).query)["X-Amz-Expires"] == [str(DOWNLOAD_TTL)]
    expiry = datetime.fromisoformat(info["urlExpiry"].replace("Z", "+00:00")).timestamp()
    assert abs(expiry - (time.time() + DOWNLOAD_TTL)) < 60
    download = httpx.get(info["url"])
    assert download.status_code == 200 and download.content == PNG
    assert download.headers["content-type"] == "image/png"

    # a failed retry reported later does not undo the stored upload
    assert _report(srv, media_id, 500, "flaky network").status_code == 200
    assert _get_media(srv, media_id).status_code == 200

    # the same content again: nothing to upload
    again = _request_upload(srv, traceId="trace-2", observationId=None, field="output").json()
    assert again == {"mediaId": media_id, "uploadUrl": None}


def test_limits_and_deletion_with_s3(s3_server):
    srv, bucket = s3_server
    too_big = _request_upload(srv, contentLength=MAX_LENGTH + 1)
    assert too_big.status_code == 400 and str(MAX_LENGTH) in too_big.json()["message"]

    def upload(data: bytes, **link) -> str:
        created = _request_upload(srv, data, **link).json()
        if created["uploadUrl"]:
            assert _put(created["uploadUrl"], data).status_code == 200
            assert _report(srv, created["mediaId"]).status_code == 200
        return created["mediaId"]

    only_t1 = upload(PNG + b"1", traceId="t1", observationId=None)
    shared = upload(PNG + b"2", traceId="t1", observationId="o1", field="output")
    assert upload(PNG + b"2", traceId="t2", observationId=None) == shared
    assert len(bucket.keys()) == 2

    resp = httpx.delete(f"{srv.url}/api/public/traces/t1", auth=srv.auth)
    assert resp.status_code == 200, resp.text
    assert {m: _get_media(srv, m).status_code for m in (only_t1, shared)} == {only_t1: 404, shared: 200}
    assert bucket.keys() == [f"{bucket.prefix}{srv.project_id}/{shared}.png"]

    resp = httpx.request("DELETE", f"{srv.url}/api/public/traces", json={"traceIds": ["t2"]}, auth=srv.auth)
    assert resp.status_code == 200, resp.text
    assert bucket.keys() == []
    assert _get_media(srv, shared).status_code == 404


# --- the real SDKs ----------------------------------------------------------------------------------------------


@pytest.fixture
def sqlite_s3_server(tmp_path, s3_bucket):
    srv = make_server(tmp_path, {"data_dir": tmp_path / "data"}, **s3_bucket.env())
    srv.start()
    try:
        yield srv, s3_bucket
    finally:
        srv.stop()


@pytest.mark.parametrize("sdk", ["langfuse2", "langfuse5"])
def test_sdk_uploads_media_straight_to_s3(sqlite_s3_server, sdk):
    srv, bucket = sqlite_s3_server
    env = {
        "LANGFUSE_HOST": srv.url,
        "LANGFUSE_BASE_URL": srv.url,
        "LANGFUSE_PUBLIC_KEY": srv.public_key,
        "LANGFUSE_SECRET_KEY": srv.secret_key,
        "PATH": "/usr/bin:/bin",
    }
    out = subprocess.run(
        [client_python(sdk), str(ROOT / "tests" / "clients" / "scripts" / "langfuse_media.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert out.returncode == 0, out.stderr[-4000:]
    ids = json.loads(out.stdout.strip().splitlines()[-1])

    assert bucket.keys() == [f"{bucket.prefix}{srv.project_id}/{ids['media_id']}.png"]
    trace = httpx.get(f"{srv.url}/api/public/traces/{ids['trace_id']}", auth=srv.auth).json()
    assert trace["input"]["image"].startswith(f"@@@langfuseMedia:type=image/png|id={ids['media_id']}|")
    media = _get_media(srv, ids["media_id"])
    assert media.status_code == 200, media.text
    assert media.json()["url"].startswith(f"{bucket.endpoint}/{bucket.bucket}/")
    download = httpx.get(media.json()["url"])
    assert download.status_code == 200 and download.content == base64.b64decode(ids["png_b64"])


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_s3_downloads_of_script_carrying_types_are_attachments(s3_server):
    """The presigned GET carries response-content-disposition/-type overrides, so S3 itself answers with
    ``attachment`` for HTML (which would otherwise run in the bucket's origin) and ``inline`` for images."""
    srv, _bucket = s3_server
    html = b"<html><script>document.title='pwned'</script></html>"
    for content_type, data, disposition in (("text/html", html, "attachment"), ("image/png", PNG, "inline")):
        created = _request_upload(srv, data, contentType=content_type)
        assert created.status_code == 201, created.text
        media_id = created.json()["mediaId"]
        assert _put(created.json()["uploadUrl"], data, **{"Content-Type": content_type}).status_code == 200
        assert _report(srv, media_id).status_code == 200
        url = _get_media(srv, media_id).json()["url"]
        assert "response-content-disposition=" in url
        download = httpx.get(url)
        assert download.status_code == 200 and download.content == data
        assert download.headers["content-type"] == content_type
        assert download.headers["content-disposition"].startswith(disposition + ";"), download.headers
