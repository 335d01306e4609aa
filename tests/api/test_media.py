"""Media upload flow over HTTP: upload URL, signed PUT, upload report, signed download; SQLite and Postgres."""

from __future__ import annotations

import base64
import hashlib
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


def sha(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def media_id(data: bytes) -> str:
    return sha(data)[:22].replace("+", "-").replace("/", "_")


def request_upload(api, data: bytes = PNG, **overrides):
    body = {
        "traceId": "trace-1",
        "observationId": "obs-1",
        "field": "input",
        "contentType": "image/png",
        "contentLength": len(data),
        "sha256Hash": sha(data),
        **overrides,
    }
    return api.client.post("/api/public/media", json=body, auth=api.auth)


def local(url: str) -> str:
    """The TestClient talks to the app whatever the host; keep path and query."""
    parts = urlsplit(url)
    assert parts.scheme == "http" and parts.netloc == "testserver", url
    return f"{parts.path}?{parts.query}"


def put(api, url: str, data: bytes = PNG, **headers):
    hdrs = {"Content-Type": "image/png", "x-amz-checksum-sha256": sha(PNG), **headers}
    return api.client.put(local(url), content=data, headers={k: v for k, v in hdrs.items() if v is not None})


def with_query(url: str, **changes) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()} | changes
    return f"{parts.scheme}://{parts.netloc}{parts.path}?{urlencode(query)}"


def test_upload_and_download_flow(api):
    resp = request_upload(api)
    assert resp.status_code == 201, resp.text
    created = resp.json()
    assert created["mediaId"] == media_id(PNG)
    upload_url = created["uploadUrl"]
    assert "/api/media-blobs/project-1/" in upload_url and "signature=" in upload_url

    # not uploaded yet
    assert api.client.get(f"/api/public/media/{created['mediaId']}", auth=api.auth).status_code == 404

    # the signed URL is the only credential; no Basic auth is sent
    assert put(api, upload_url).status_code == 200
    report = {
        "uploadedAt": "2024-06-01T00:00:00Z",
        "uploadHttpStatus": 200,
        "uploadHttpError": None,
        "uploadTimeMs": 12,
    }
    patched = api.client.patch(f"/api/public/media/{created['mediaId']}", json=report, auth=api.auth)
    assert patched.status_code == 200 and patched.json() == {"message": "OK"}

    info = api.client.get(f"/api/public/media/{created['mediaId']}", auth=api.auth).json()
    assert info["contentType"] == "image/png" and info["contentLength"] == len(PNG)
    assert info["uploadedAt"] == "2024-06-01T00:00:00.000Z" and info["urlExpiry"].endswith("Z")
    download = api.client.get(local(info["url"]))
    assert download.status_code == 200 and download.content == PNG
    assert download.headers["content-type"] == "image/png"

    # the same content again: already uploaded, no new upload URL, same id
    again = request_upload(api, traceId="trace-2", observationId=None, field="output").json()
    assert again == {"mediaId": created["mediaId"], "uploadUrl": None}

    # the download URL cannot be altered or used for another method
    assert api.client.get(local(with_query(info["url"], signature="0" * 64))).status_code == 403
    assert api.client.get(local(info["url"]).split("?")[0]).status_code == 403
    assert (
        api.client.put(local(info["url"]), content=PNG, headers={"Content-Type": "image/png"}).status_code
        == 403
    )
    other_project, other_auth = api.new_project_key()
    assert api.client.get(f"/api/public/media/{created['mediaId']}", auth=other_auth).status_code == 404


def test_upload_url_checks(api):
    url = request_upload(api).json()["uploadUrl"]
    tampered = with_query(url, expires=str(int(url.split("expires=")[1].split("&")[0]) + 3600))
    assert put(api, tampered).status_code == 403
    assert put(api, with_query(url, signature="f" * 64)).status_code == 403
    wrong_checksum = put(api, url, **{"x-amz-checksum-sha256": sha(b"other")})
    assert wrong_checksum.status_code == 400 and "x-amz-checksum-sha256" in wrong_checksum.json()["message"]
    # same length, other bytes, no checksum header: the body hash is still checked
    forged = bytes([PNG[0] ^ 1]) + PNG[1:]
    resp = put(api, url, forged, **{"x-amz-checksum-sha256": None})
    assert resp.status_code == 400 and "SHA-256" in resp.json()["message"]
    assert put(api, url, PNG + b"x").status_code == 400
    assert put(api, url, **{"Content-Type": "image/jpeg"}).status_code == 400
    # nothing was stored by the refused attempts
    mid = media_id(PNG)
    assert api.client.get(f"/api/public/media/{mid}", auth=api.auth).status_code == 404

    api.services.media.upload_url_ttl = -5
    expired = request_upload(api).json()["uploadUrl"]
    resp = put(api, expired)
    assert resp.status_code == 403 and resp.json()["message"] == "Request has expired"


@pytest.mark.parametrize(
    "overrides, status",
    [
        ({"contentType": "image/x-nope"}, 400),
        ({"contentLength": 0}, 400),
        ({"sha256Hash": "abc"}, 400),
        ({"field": "expectedOutput"}, 400),
        ({"datasetId": "d", "datasetItemId": "i"}, 400),
        ({"traceId": None, "observationId": None}, 400),
        ({"traceId": None, "observationId": None, "datasetId": "missing", "datasetItemId": "i"}, 404),
    ],
)
def test_upload_request_validation(api, overrides, status):
    overrides = dict(overrides)
    if "datasetId" in overrides and overrides.get("traceId", "x") is None:
        overrides["field"] = "input"
    assert request_upload(api, **overrides).status_code == status


def test_patch_unknown_media(api):
    resp = api.client.patch(
        "/api/public/media/nope",
        json={"uploadedAt": "2024-01-01T00:00:00Z", "uploadHttpStatus": 200},
        auth=api.auth,
    )
    assert resp.status_code == 404


def test_dataset_item_media_references(api):
    dataset = api.client.post("/api/public/v2/datasets", json={"name": "with-media"}, auth=api.auth).json()
    created = request_upload(
        api,
        traceId=None,
        observationId=None,
        datasetId=dataset["id"],
        datasetItemId="img-item",
        field="input",
    ).json()
    assert put(api, created["uploadUrl"]).status_code == 200
    ref = f"@@@langfuseMedia:type=image/png|id={created['mediaId']}|source=bytes@@@"
    item = api.client.post(
        "/api/public/dataset-items",
        auth=api.auth,
        json={
            "datasetName": "with-media",
            "id": "img-item",
            "input": {"image": ref, "text": "describe"},
            "metadata": [ref, "unknown @@@langfuseMedia:type=image/png|id=missing|source=bytes@@@"],
        },
    ).json()
    refs = {(r["field"], r["jsonPath"]): r for r in item["mediaReferences"]}
    assert set(refs) == {("input", "$['image']"), ("metadata", "$[0]")}
    media = refs[("input", "$['image']")]["media"]
    assert refs[("input", "$['image']")]["referenceString"] == ref
    assert media["mediaId"] == created["mediaId"] and media["contentLength"] == len(PNG)
    assert api.client.get(local(media["url"])).content == PNG


def test_urls_use_nextauth_url_when_configured(api):
    api.services.settings.nextauth_url = "https://lightfuse.example.com/"
    url = request_upload(api).json()["uploadUrl"]
    assert url.startswith("https://lightfuse.example.com/api/media-blobs/project-1/")


def _upload(api, data: bytes, **link) -> str:
    created = request_upload(api, data=data, contentLength=len(data), sha256Hash=sha(data), **link).json()
    if created["uploadUrl"]:
        assert (
            put(api, created["uploadUrl"], data=data, **{"x-amz-checksum-sha256": sha(data)}).status_code
            == 200
        )
    return created["mediaId"]


def test_deleting_traces_deletes_media_only_they_reference(api):
    blobs = api.services.settings.data_dir / "media"
    only_t1 = _upload(api, PNG + b"1", traceId="t1", observationId=None, field="input")
    shared = _upload(api, PNG + b"2", traceId="t1", observationId="o1", field="output")
    assert _upload(api, PNG + b"2", traceId="t2", observationId=None, field="input") == shared
    assert len([p for p in blobs.rglob("*") if p.is_file()]) == 2

    resp = api.client.delete("/api/public/traces/t1", auth=api.auth)
    assert resp.status_code == 200, resp.text

    status = {
        m: api.client.get(f"/api/public/media/{m}", auth=api.auth).status_code for m in (only_t1, shared)
    }
    assert status == {only_t1: 404, shared: 200}
    files = [p for p in blobs.rglob("*") if p.is_file()]
    assert len(files) == 1 and files[0].read_bytes() == PNG + b"2"

    # the last reference goes: so do the record and the bytes
    resp = api.client.request("DELETE", "/api/public/traces", json={"traceIds": ["t2"]}, auth=api.auth)
    assert resp.status_code == 200, resp.text
    assert api.client.get(f"/api/public/media/{shared}", auth=api.auth).status_code == 404
    assert not [p for p in blobs.rglob("*") if p.is_file()]
