"""Uploaded media never runs in the app's origin (security issue #13, finding 2).

Media of types that can carry script (HTML, SVG, JavaScript, XML, ...) is uploaded through the real media API
and downloaded from the URL the API returns: it comes back as an attachment, with ``nosniff`` and a CSP
``sandbox``; raster images, audio, video and PDF stay inline but carry the same two headers. The browser side
(a signed-in Chromium opening the HTML media) is tests/web/test_media_browser.py.
"""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient

from tests.api.test_media import PNG, local, sha

SCRIPT_CARRIERS = {
    "text/html": b"<html><body><script>document.title='pwned'</script></body></html>",
    "image/svg+xml": b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
    "application/javascript": b"fetch('/api/public/projects').then(r => r.text())",
}


def _upload_and_download(client, auth, content_type: str, data: bytes):
    created = client.post(
        "/api/public/media",
        auth=auth,
        json={
            "traceId": f"t-{uuid.uuid4().hex[:8]}",
            "field": "input",
            "contentType": content_type,
            "contentLength": len(data),
            "sha256Hash": sha(data),
        },
    )
    assert created.status_code == 201, created.text
    body = created.json()
    put = client.put(
        local(body["uploadUrl"]),
        content=data,
        headers={"Content-Type": content_type, "x-amz-checksum-sha256": sha(data)},
    )
    assert put.status_code == 200, put.text
    info = client.get(f"/api/public/media/{body['mediaId']}", auth=auth).json()
    return info, client.get(local(info["url"]))


@pytest.mark.parametrize("content_type", sorted(SCRIPT_CARRIERS))
def test_media_that_can_carry_script_is_an_attachment(api, content_type):
    info, download = _upload_and_download(api.client, api.auth, content_type, SCRIPT_CARRIERS[content_type])
    assert download.status_code == 200 and download.content == SCRIPT_CARRIERS[content_type]
    assert download.headers["content-disposition"].startswith("attachment;"), download.headers
    assert info["mediaId"] in download.headers["content-disposition"]
    assert download.headers["x-content-type-options"] == "nosniff"
    assert download.headers["content-security-policy"].split(";")[0] == "sandbox"


def test_safe_images_stay_inline_but_sandboxed(api):
    _info, download = _upload_and_download(api.client, api.auth, "image/png", PNG)
    assert download.headers["content-type"] == "image/png"
    assert download.headers["content-disposition"].startswith("inline;")
    assert download.headers["x-content-type-options"] == "nosniff"
    assert download.headers["content-security-policy"].split(";")[0] == "sandbox"


def test_download_urls_can_live_on_an_origin_of_their_own(tmp_path, monkeypatch):
    from lightfuse.app import build_services, create_app
    from lightfuse.config import InitSettings, load_settings

    monkeypatch.setenv("LIGHTFUSE_MEDIA_DOWNLOAD_BASE_URL", "https://media.example.net/")
    init = InitSettings(
        org_id="o", project_id="p1", project_public_key="pk-lf-m", project_secret_key="sk-lf-m"
    )
    services = build_services(load_settings(data_dir=tmp_path / "data", init=init))
    data = SCRIPT_CARRIERS["text/html"]
    with TestClient(create_app(services)) as client:
        auth = ("pk-lf-m", "sk-lf-m")
        created = client.post(
            "/api/public/media",
            auth=auth,
            json={
                "traceId": "t",
                "field": "input",
                "contentType": "text/html",
                "contentLength": len(data),
                "sha256Hash": sha(data),
            },
        ).json()
        # uploads still go to the app's own address; downloads to the media origin
        assert created["uploadUrl"].startswith("http://testserver/api/media-blobs/p1/")
        put = client.put(
            created["uploadUrl"],
            content=data,
            headers={"Content-Type": "text/html", "x-amz-checksum-sha256": sha(data)},
        )
        assert put.status_code == 200
        info = client.get(f"/api/public/media/{created['mediaId']}", auth=auth).json()
        assert info["url"].startswith("https://media.example.net/api/media-blobs/p1/"), info["url"]
        # the media origin is routed to this same server: the signed URL works there
        path = info["url"].removeprefix("https://media.example.net")
        download = client.get(path)
        assert download.status_code == 200 and download.headers["content-disposition"].startswith(
            "attachment"
        )
    services.engine.dispose()
