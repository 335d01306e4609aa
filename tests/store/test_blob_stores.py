"""The BlobStore contract on both stores (local directory, S3 on SeaweedFS), and S3's presigned URLs."""

from __future__ import annotations

import base64
import hashlib
import io
import time
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from botocore.exceptions import ClientError

from lightfuse.store.blobs import InvalidKey, LocalDirectoryBlobStore, PresigningBlobStore

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
INVALID_KEYS = ["", "../x", "a/../b", "a/./b", "/abs", "a//b", "a/", "a/b c", "a\\b", "a/é.png", "x" * 201]


def sha(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


@pytest.fixture(params=["local", "s3"])
def blob_store(request, tmp_path):
    if request.param == "local":
        return LocalDirectoryBlobStore(tmp_path / "media")
    return request.getfixturevalue("s3_bucket").store()


def test_round_trip(blob_store):
    assert blob_store.put("project-1/abc.png", io.BytesIO(PNG)) == len(PNG)
    assert blob_store.size("project-1/abc.png") == len(PNG)
    handle = blob_store.open("project-1/abc.png")
    try:
        assert handle.read() == PNG
    finally:
        handle.close()

    # a second put replaces the object; put stores from the source's current position
    source = io.BytesIO(b"skip" + b"new bytes")
    source.seek(4)
    assert blob_store.put("project-1/abc.png", source) == len(b"new bytes")
    assert blob_store.size("project-1/abc.png") == len(b"new bytes")
    with blob_store.open("project-1/abc.png") as handle:
        assert handle.read() == b"new bytes"

    assert blob_store.put("project-1/empty.txt", io.BytesIO(b"")) == 0
    assert blob_store.size("project-1/empty.txt") == 0

    blob_store.delete("project-1/abc.png")
    assert blob_store.size("project-1/abc.png") is None
    assert blob_store.open("project-1/abc.png") is None
    blob_store.delete("project-1/abc.png")  # deleting what is not there is fine


def test_missing_keys(blob_store):
    assert blob_store.size("project-1/never.png") is None
    assert blob_store.open("project-1/never.png") is None
    assert blob_store.size("other-project/never.png") is None
    blob_store.delete("project-1/never.png")


@pytest.mark.parametrize("key", INVALID_KEYS)
def test_invalid_keys_are_refused_by_every_operation(blob_store, key):
    with pytest.raises(InvalidKey):
        blob_store.put(key, io.BytesIO(b"x"))
    with pytest.raises(InvalidKey):
        blob_store.open(key)
    with pytest.raises(InvalidKey):
        blob_store.size(key)
    with pytest.raises(InvalidKey):
        blob_store.delete(key)


def test_only_s3_presigns(tmp_path, s3_bucket):
    assert isinstance(s3_bucket.store(), PresigningBlobStore)
    assert not isinstance(LocalDirectoryBlobStore(tmp_path), PresigningBlobStore)


# --- S3 specifics ---------------------------------------------------------------------------------------------


def test_s3_keys_carry_the_prefix_and_large_objects_go_multipart(s3_bucket):
    store = s3_bucket.store()
    big = b"0123456789abcdef" * (600 * 1024)  # 9.4 MiB: above boto3's 8 MiB multipart threshold
    assert store.put("project-1/big.bin", io.BytesIO(big)) == len(big)
    store.put("project-1/small.png", io.BytesIO(PNG))
    assert s3_bucket.keys() == [
        f"{s3_bucket.prefix}project-1/big.bin",
        f"{s3_bucket.prefix}project-1/small.png",
    ]
    assert store.size("project-1/big.bin") == len(big)
    with store.open("project-1/big.bin") as handle:
        assert hashlib.sha256(handle.read()).digest() == hashlib.sha256(big).digest()
    # the same bucket without the prefix sees other keys
    assert s3_bucket.store(prefix="").size("project-1/small.png") is None


def test_s3_errors_other_than_missing_are_raised(s3_bucket):
    wrong_secret = s3_bucket.store(secret_access_key="not-the-secret")
    with pytest.raises(ClientError):
        wrong_secret.size("project-1/x.png")
    with pytest.raises(ClientError):
        wrong_secret.put("project-1/x.png", io.BytesIO(PNG))


def test_s3_repr_shows_no_credentials(s3_bucket):
    text = repr(s3_bucket.store()) + str(s3_bucket.store())
    assert s3_bucket.bucket in text and s3_bucket.secret_access_key not in text
    assert s3_bucket.access_key_id not in text


def _upload_headers(data: bytes = PNG, **changes) -> dict[str, str]:
    # what the Langfuse SDKs send (5.x adds the Azure header, which S3 ignores)
    headers = {"Content-Type": "image/png", "x-amz-checksum-sha256": sha(data), "x-ms-blob-type": "BlockBlob"}
    return {k: v for k, v in (headers | changes).items() if v is not None}


def test_presigned_put_then_get(s3_bucket):
    store = s3_bucket.store()
    url = store.presigned_upload_url(
        "project-1/abc.png",
        content_type="image/png",
        content_length=len(PNG),
        sha256_b64=sha(PNG),
        expires_in=300,
    )
    query = parse_qs(urlsplit(url).query)
    assert url.startswith(f"{s3_bucket.endpoint}/{s3_bucket.bucket}/{s3_bucket.prefix}project-1/abc.png?")
    assert query["X-Amz-SignedHeaders"] == ["content-length;content-type;host;x-amz-checksum-sha256"]
    assert query["X-Amz-Expires"] == ["300"]

    # no credentials beyond the URL itself
    resp = httpx.put(url, content=PNG, headers=_upload_headers())
    assert resp.status_code == 200, resp.text
    assert store.size("project-1/abc.png") == len(PNG)

    download = store.presigned_download_url("project-1/abc.png", expires_in=120)
    assert parse_qs(urlsplit(download).query)["X-Amz-Expires"] == ["120"]
    got = httpx.get(download)
    assert got.status_code == 200 and got.content == PNG
    assert got.headers["content-type"] == "image/png"
    # a download URL does not authorise writing
    assert httpx.put(download, content=PNG, headers=_upload_headers()).status_code == 403


def test_presigned_put_refuses_other_bytes_and_headers(s3_bucket):
    store = s3_bucket.store()
    url = store.presigned_upload_url(
        "project-1/abc.png",
        content_type="image/png",
        content_length=len(PNG),
        sha256_b64=sha(PNG),
        expires_in=300,
    )
    forged = bytes([PNG[0] ^ 1]) + PNG[1:]  # same length, other bytes, the announced checksum
    assert httpx.put(url, content=forged, headers=_upload_headers()).status_code == 400  # BadDigest
    # the checksum of the forged bytes is not the one that was signed
    assert httpx.put(url, content=forged, headers=_upload_headers(forged)).status_code == 403
    assert (
        httpx.put(url, content=PNG, headers=_upload_headers(**{"Content-Type": "image/jpeg"})).status_code
        == 403
    )
    assert httpx.put(url, content=PNG + b"x", headers=_upload_headers()).status_code == 403
    assert (
        httpx.put(url, content=PNG, headers=_upload_headers(**{"x-amz-checksum-sha256": None})).status_code
        == 403
    )
    tampered = url.replace("X-Amz-Expires=300", "X-Amz-Expires=3000")
    assert httpx.put(tampered, content=PNG, headers=_upload_headers()).status_code == 403
    assert store.size("project-1/abc.png") is None


def test_presigned_urls_expire(s3_bucket):
    store = s3_bucket.store()
    store.put("project-1/abc.png", io.BytesIO(PNG))
    url = store.presigned_download_url("project-1/abc.png", expires_in=1)
    time.sleep(2.1)
    assert httpx.get(url).status_code == 403
