"""Media (api-semantics 5.11): upload-URL requests, upload reports, download URLs, and the signed blob URLs.

``/api/public/media*`` take Basic auth like every project route. ``/api/media-blobs/...`` stand in for the
presigned S3 URLs of Langfuse when the blob store is a local directory: no Basic auth, the URL's expiry and
HMAC signature are the authorisation (SDKs PUT to the upload URL without credentials, browsers GET the download
URL in an ``<img>``). With an S3 bucket configured, the URLs handed out point at the bucket instead.

Downloads are user content and must never run in the app's origin: ``nosniff``, a CSP ``sandbox`` (the document
gets an opaque origin: no cookies, storage or same-origin requests of the app) and ``attachment`` for every
type that could carry script (services.media.content_disposition).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response, StreamingResponse

from lightfuse.api.common import JSONResponse, ProjectAuth, read_json
from lightfuse.api.resource_helpers import public_base_url, service_errors
from lightfuse.services.media.media import BLOB_ROUTE, content_disposition

router = APIRouter()


def _media(request: Request):
    return request.app.state.services.media


@router.post("/api/public/media")
async def create_media_upload(request: Request, auth: ProjectAuth):
    body = await read_json(request)
    with service_errors():
        result = await run_in_threadpool(
            _media(request).create_upload, auth.project_id, body, public_base_url(request)
        )
    return JSONResponse(result, 201)


@router.get("/api/public/media/{media_id}")
def get_media(media_id: str, request: Request, auth: ProjectAuth):
    with service_errors():
        return JSONResponse(_media(request).get(auth.project_id, media_id, public_base_url(request)))


@router.patch("/api/public/media/{media_id}")
async def report_media_upload(media_id: str, request: Request, auth: ProjectAuth):
    body = await read_json(request)
    with service_errors():
        await run_in_threadpool(_media(request).record_upload_result, auth.project_id, media_id, body)
    return JSONResponse({"message": "OK"})


# what every media download carries, whatever its type
_DOWNLOAD_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "sandbox",
    "Referrer-Policy": "no-referrer",
}


# --- the signed blob URLs -----------------------------------------------------------------------------------


@router.put(BLOB_ROUTE + "/{project_id}/{object_name}")
async def upload_blob(project_id: str, object_name: str, request: Request):
    service = _media(request)
    q = request.query_params
    with service_errors():
        sink = await run_in_threadpool(
            service.begin_upload,
            project_id,
            object_name,
            q.get("expires"),
            q.get("signature"),
            dict(request.headers),
        )
        try:
            async for chunk in request.stream():
                sink.write(chunk)
            await run_in_threadpool(service.finish_upload, sink)
        finally:
            sink.close()  # also when the client went away mid-body
    return Response(status_code=200)


def _chunks(handle: BinaryIO) -> Iterator[bytes]:
    try:
        while chunk := handle.read(256 * 1024):
            yield chunk
    finally:
        handle.close()


@router.get(BLOB_ROUTE + "/{project_id}/{object_name}")
def download_blob(project_id: str, object_name: str, request: Request):
    q = request.query_params
    with service_errors():
        handle, content_type, size, name = _media(request).open_download(
            project_id, object_name, q.get("expires"), q.get("signature")
        )
    headers = {
        "Content-Length": str(size),
        "Cache-Control": "private, max-age=3600",
        **_DOWNLOAD_HEADERS,
        "Content-Disposition": content_disposition(content_type, name),
    }
    return StreamingResponse(_chunks(handle), media_type=content_type, headers=headers)
