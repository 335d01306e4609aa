"""Media uploads (api-semantics 5.11): upload URLs, upload reports, download URLs, on either kind of blob store.

Langfuse hands SDKs presigned S3 URLs. With a store that can presign (S3, ``LANGFUSE_S3_MEDIA_UPLOAD_*``) so
does Lightfuse: the SDK PUTs the bytes straight to the bucket, S3 checks them against the signed type, length
and checksum, and the SDK's PATCH is what marks the upload done (the server never sees the bytes).

With the embedded blob store (a directory) Lightfuse plays S3's part: ``uploadUrl`` and the download ``url``
point at Lightfuse's own ``/api/media-blobs/...`` routes and carry an expiry and an HMAC-SHA256 signature
instead of Basic auth. The signature binds the HTTP method, project, media id and expiry, and for uploads also
the content type, length and SHA-256 the client announced, so a URL cannot be reused for other bytes. The
signing key is derived from ENCRYPTION_KEY (or SALT).

User content never runs in the app's origin: every download is served with ``nosniff`` and a CSP ``sandbox``
(self-served), and every type outside ``INLINE_SAFE_TYPES`` (raster images, audio, video, PDF) as an
attachment - on S3 too, through the presigned URL's response-header overrides. ``download_base_url`` (the
``LIGHTFUSE_MEDIA_DOWNLOAD_BASE_URL`` setting) moves self-served download URLs to an origin of their own.

Media ids are the first 22 characters of the URL-safe base64 SHA-256 of the bytes (what the SDKs compute), so
one content is stored once per project however often it is referenced.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import re
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any, BinaryIO
from urllib.parse import quote

from sqlalchemy import Engine

from lightfuse.services.common.clock import now_ms
from lightfuse.services.common.resources import RequestError, bad, iso, json_object, not_found, parse_iso
from lightfuse.store.blobs import BlobStore, PresigningBlobStore
from lightfuse.store.sql import datasets as dataset_store
from lightfuse.store.sql import media as store
from lightfuse.store.sql.transactions import write_transaction

log = logging.getLogger(__name__)

# MIME type -> file extension of the stored object (the accepted types are Langfuse's MediaContentType enum)
CONTENT_TYPES: dict[str, str] = {
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/jpg": "jpg",
    "image/webp": "webp",
    "image/gif": "gif",
    "image/svg+xml": "svg",
    "image/tiff": "tiff",
    "image/bmp": "bmp",
    "image/avif": "avif",
    "image/heic": "heic",
    "audio/mpeg": "mp3",
    "audio/mp3": "mp3",
    "audio/wav": "wav",
    "audio/ogg": "ogg",
    "audio/oga": "oga",
    "audio/aac": "aac",
    "audio/mp4": "m4a",
    "audio/flac": "flac",
    "audio/opus": "opus",
    "audio/webm": "weba",
    "video/mp4": "mp4",
    "video/webm": "webm",
    "video/ogg": "ogv",
    "video/mpeg": "mpeg",
    "video/quicktime": "mov",
    "video/x-msvideo": "avi",
    "video/x-matroska": "mkv",
    "text/plain": "txt",
    "text/html": "html",
    "text/css": "css",
    "text/csv": "csv",
    "text/markdown": "md",
    "text/x-python": "py",
    "application/javascript": "js",
    "text/x-typescript": "ts",
    "application/x-yaml": "yaml",
    "application/pdf": "pdf",
    "application/msword": "doc",
    "application/vnd.ms-excel": "xls",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
    "application/zip": "zip",
    "application/json": "json",
    "application/xml": "xml",
    "application/octet-stream": "bin",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": "pptx",
    "application/rtf": "rtf",
    "application/x-ndjson": "ndjson",
    "application/vnd.apache.parquet": "parquet",
    "application/gzip": "gz",
    "application/x-tar": "tar",
    "application/x-7z-compressed": "7z",
}
# Types a browser may show inline: they cannot carry script. Not SVG (it can), not text/html, not JS, not XML.
INLINE_SAFE_TYPES = frozenset(
    t for t in CONTENT_TYPES if t.startswith(("image/", "audio/", "video/")) and t != "image/svg+xml"
) | {"application/pdf"}
# Langfuse's default LANGFUSE_S3_MEDIA_MAX_CONTENT_LENGTH
MAX_CONTENT_LENGTH = 1_000_000_000
# upload URLs live an hour in Langfuse; download URLs follow LANGFUSE_S3_MEDIA_DOWNLOAD_URL_EXPIRY_SECONDS
UPLOAD_URL_TTL_SECONDS = 3600
DOWNLOAD_URL_TTL_SECONDS = 3600
BLOB_ROUTE = "/api/media-blobs"
_OK_STATUSES = (200, 201)
_TRACE_FIELDS = ("input", "output", "metadata")
_DATASET_FIELDS = ("input", "expectedOutput", "metadata")
_SAFE_SEGMENT = re.compile(r"[A-Za-z0-9_.\-]{1,100}")


def media_id_for(sha256_b64: str) -> str:
    return sha256_b64[:22].replace("+", "-").replace("/", "_")


def _project_segment(project_id: str) -> str:
    # blob keys allow a restricted alphabet; odd project ids get a stable hashed directory name instead
    if _SAFE_SEGMENT.fullmatch(project_id) and project_id not in (".", ".."):
        return project_id
    return "p-" + hashlib.sha256(project_id.encode()).hexdigest()[:32]


def content_disposition(content_type: str, object_name: str) -> str:
    """``inline`` for the types in INLINE_SAFE_TYPES, else ``attachment`` (the browser saves, never renders)."""
    kind = "inline" if content_type in INLINE_SAFE_TYPES else "attachment"
    return f'{kind}; filename="{object_name}"'  # object names are <mediaId>.<ext>: no quotes, no slashes


def _sha256_b64(value: Any) -> str:
    if not isinstance(value, str) or len(value) != 44:
        raise bad("sha256Hash must be the 44-character base64 encoding of a SHA-256 digest")
    try:
        if len(base64.b64decode(value, validate=True)) != 32:
            raise ValueError
    except (binascii.Error, ValueError):
        raise bad("sha256Hash must be the 44-character base64 encoding of a SHA-256 digest") from None
    return value


@dataclass
class UploadSink:
    """Receives the bytes of one PUT: hashes and counts them while spooling to memory, then to disk."""

    project_id: str
    media: dict[str, Any]
    received: int = 0
    hasher: Any = field(default_factory=hashlib.sha256)
    spool: Any = field(default_factory=lambda: tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024))

    def write(self, chunk: bytes) -> None:
        self.received += len(chunk)
        if self.received > self.media["content_length"]:
            raise bad(
                f"Body is larger than the announced contentLength of {self.media['content_length']} bytes"
            )
        self.hasher.update(chunk)
        self.spool.write(chunk)

    def close(self) -> None:
        self.spool.close()


class MediaService:
    def __init__(
        self,
        engine: Engine,
        blobs: BlobStore,
        secret: str,
        *,
        max_content_length: int = MAX_CONTENT_LENGTH,
        upload_url_ttl: int = UPLOAD_URL_TTL_SECONDS,
        download_url_ttl: int = DOWNLOAD_URL_TTL_SECONDS,
        download_base_url: str | None = None,
    ) -> None:
        self._engine = engine
        self._blobs = blobs
        # clients reach such a store directly; otherwise they come to /api/media-blobs
        self._presigner = blobs if isinstance(blobs, PresigningBlobStore) else None
        # a key of its own, so a leaked URL signature says nothing about the secret it came from
        self._key = hmac.new(secret.encode(), b"lightfuse media url signing v1", hashlib.sha256).digest()
        self._max = max_content_length
        # seconds a signed or presigned URL stays valid
        self.upload_url_ttl = upload_url_ttl
        self.download_url_ttl = download_url_ttl
        # where self-served download URLs point (another origin than the app's); None: the request's base
        self._download_base_url = download_base_url.rstrip("/") if download_base_url else None

    # --- signing --------------------------------------------------------------------------------------------

    def _signature(self, method: str, project_id: str, media: dict[str, Any], expires: int) -> str:
        parts = [method, project_id, media["id"], str(expires)]
        if method == "PUT":
            parts += [media["content_type"], str(media["content_length"]), media["sha_256_hash"]]
        return hmac.new(self._key, "\n".join(parts).encode(), hashlib.sha256).hexdigest()

    def _self_served_url(
        self, base_url: str, method: str, project_id: str, media: dict[str, Any], expires: int
    ) -> str:
        signature = self._signature(method, project_id, media, expires)
        name = media["bucket_path"].rsplit("/", 1)[-1]
        return (
            f"{base_url.rstrip('/')}{BLOB_ROUTE}/{quote(project_id, safe='')}/{quote(name, safe='')}"
            f"?expires={expires}&signature={signature}"
        )

    def _upload_url(self, base_url: str, project_id: str, media: dict[str, Any]) -> str:
        if self._presigner is not None:
            return self._presigner.presigned_upload_url(
                media["bucket_path"],
                content_type=media["content_type"],
                content_length=media["content_length"],
                sha256_b64=media["sha_256_hash"],
                expires_in=self.upload_url_ttl,
            )
        return self._self_served_url(
            base_url, "PUT", project_id, media, int(time.time()) + self.upload_url_ttl
        )

    def _verified(
        self, method: str, project_id: str, object_name: str, expires: str | None, signature: str | None
    ) -> dict[str, Any]:
        """The media record a signed URL addresses; 403 for a bad or expired signature, as S3 answers."""
        media_id = object_name.split(".", 1)[0]
        with self._engine.connect() as conn:
            media = store.get_media(conn, project_id, media_id)
        if not expires or not signature or not expires.isdigit() or media is None:
            raise RequestError(403, "Signature does not match")
        expected = self._signature(method, project_id, media, int(expires))
        if not hmac.compare_digest(expected, signature):
            raise RequestError(403, "Signature does not match")
        if int(expires) < time.time():
            raise RequestError(403, "Request has expired")
        return media

    def download_info(self, base_url: str, project_id: str, media: dict[str, Any]) -> dict[str, Any]:
        expires = int(time.time()) + self.download_url_ttl
        if self._presigner is not None:
            name = media["bucket_path"].rsplit("/", 1)[-1]
            url = self._presigner.presigned_download_url(
                media["bucket_path"],
                expires_in=self.download_url_ttl,
                content_type=media["content_type"],
                content_disposition=content_disposition(media["content_type"], name),
            )
        else:
            url = self._self_served_url(
                self._download_base_url or base_url, "GET", project_id, media, expires
            )
        return {
            "mediaId": media["id"],
            "contentType": media["content_type"],
            "contentLength": media["content_length"],
            "url": url,
            "urlExpiry": iso(expires * 1000),
        }

    # --- public API -----------------------------------------------------------------------------------------

    def delete_blobs(self, keys: list[str]) -> None:
        """Remove stored bytes whose media records are gone; a failure leaves a stray file, never a broken link."""
        for key in keys:
            try:
                self._blobs.delete(key)
            except Exception:  # logged; the records are already gone and nothing links to these bytes
                log.exception("could not delete media blob %s", key)

    def create_upload(self, project_id: str, body: Any, base_url: str) -> dict[str, Any]:
        """POST /api/public/media -> {mediaId, uploadUrl|null}; links the media to its trace or dataset item."""
        body = json_object(body)
        content_type = body.get("contentType")
        # a list or object is unhashable: the type check keeps the lookup from raising (a 500)
        if not isinstance(content_type, str) or content_type not in CONTENT_TYPES:
            raise bad(f"contentType must be one of: {', '.join(CONTENT_TYPES)}")
        length = body.get("contentLength")
        if not isinstance(length, int) or isinstance(length, bool) or length <= 0:
            raise bad("contentLength must be a positive integer")
        if length > self._max:
            raise bad(f"contentLength must be at most {self._max} bytes")
        sha = _sha256_b64(body.get("sha256Hash"))
        link = self._link_target(body)
        media_id = media_id_for(sha)
        now = now_ms()
        key = f"{_project_segment(project_id)}/{media_id}.{CONTENT_TYPES[content_type]}"
        with write_transaction(self._engine) as conn:
            if (
                link["kind"] == "dataset"
                and dataset_store.get_dataset(conn, project_id, link["dataset_id"]) is None
            ):
                raise not_found("Dataset not found")
            store.create_media_if_absent(
                conn,
                {
                    "project_id": project_id,
                    "id": media_id,
                    "sha_256_hash": sha,
                    "bucket_path": key,
                    "content_type": content_type,
                    "content_length": length,
                    "created_at": now,
                    "updated_at": now,
                },
            )
            media = store.get_media(conn, project_id, media_id)
            assert media is not None
            done = media["upload_http_status"] in _OK_STATUSES and media["content_type"] == content_type
            if not done and (media["content_type"], media["content_length"]) != (content_type, length):
                changes = {
                    "content_type": content_type,
                    "content_length": length,
                    "bucket_path": key,
                    "uploaded_at": None,
                    "upload_http_status": None,
                    "upload_http_error": None,
                    "updated_at": now,
                }
                store.update_media(conn, project_id, media_id, changes)
                media.update(changes)
            if link["kind"] == "trace":
                store.link_trace_media(
                    conn,
                    {
                        "project_id": project_id,
                        "media_id": media_id,
                        "trace_id": link["trace_id"],
                        "observation_id": link["observation_id"] or "",
                        "field": link["field"],
                        "created_at": now,
                    },
                )
            else:
                store.link_dataset_item_media(
                    conn,
                    {
                        "project_id": project_id,
                        "media_id": media_id,
                        "dataset_id": link["dataset_id"],
                        "dataset_item_id": link["dataset_item_id"],
                        "field": link["field"],
                        "created_at": now,
                    },
                )
        upload_url = None if done else self._upload_url(base_url, project_id, media)
        return {"mediaId": media_id, "uploadUrl": upload_url}

    @staticmethod
    def _link_target(body: dict[str, Any]) -> dict[str, Any]:
        def text(key: str) -> str | None:
            value = body.get(key)
            if value is not None and (not isinstance(value, str) or not value):
                raise bad(f"{key} must be a non-empty string")
            return value

        trace_id, observation_id = text("traceId"), text("observationId")
        dataset_id, item_id = text("datasetId"), text("datasetItemId")
        field_name = body.get("field")
        if trace_id is not None and (dataset_id is not None or item_id is not None):
            raise bad(
                "Provide exactly one context: traceId (with optional observationId) or datasetId with "
                "datasetItemId"
            )
        if trace_id is not None:
            if field_name not in _TRACE_FIELDS:
                raise bad(f"field must be one of {', '.join(_TRACE_FIELDS)} for trace media")
            return {
                "kind": "trace",
                "trace_id": trace_id,
                "observation_id": observation_id,
                "field": field_name,
            }
        if observation_id is not None:
            raise bad("observationId requires traceId")
        if dataset_id is None or item_id is None:
            raise bad(
                "Provide exactly one context: traceId (with optional observationId) or datasetId with "
                "datasetItemId"
            )
        if field_name not in _DATASET_FIELDS:
            raise bad(f"field must be one of {', '.join(_DATASET_FIELDS)} for dataset item media")
        return {"kind": "dataset", "dataset_id": dataset_id, "dataset_item_id": item_id, "field": field_name}

    def record_upload_result(self, project_id: str, media_id: str, body: Any) -> None:
        """PATCH /api/public/media/{id}: the SDK reports how its upload went."""
        body = json_object(body)
        uploaded_at = parse_iso(body.get("uploadedAt"), "uploadedAt")
        status = body.get("uploadHttpStatus")
        if not isinstance(status, int) or isinstance(status, bool):
            raise bad("uploadHttpStatus must be an integer")
        error = body.get("uploadHttpError")
        if error is not None and not isinstance(error, str):
            raise bad("uploadHttpError must be a string or null")
        took = body.get("uploadTimeMs")
        if took is not None and (not isinstance(took, int) or isinstance(took, bool)):
            raise bad("uploadTimeMs must be an integer or null")
        with self._engine.connect() as conn:
            media = store.get_media(conn, project_id, media_id)
        if media is None:
            raise not_found("Media not found")
        # a failed retry does not undo an upload that succeeded and whose bytes are there. The blob check runs
        # outside the write transaction: on S3 it is a network round trip, too long to hold the writer for.
        if (
            status not in _OK_STATUSES
            and media["upload_http_status"] in _OK_STATUSES
            and self._blobs.size(media["bucket_path"]) is not None
        ):
            return
        with write_transaction(self._engine) as conn:
            store.update_media(
                conn,
                project_id,
                media_id,
                {
                    "uploaded_at": uploaded_at,
                    "upload_http_status": status,
                    "upload_http_error": error or None,
                    "upload_time_ms": took,
                    "updated_at": now_ms(),
                },
            )

    def get(self, project_id: str, media_id: str, base_url: str) -> dict[str, Any]:
        with self._engine.connect() as conn:
            media = store.get_media(conn, project_id, media_id)
        if media is None:
            raise not_found("Media not found")
        if media["upload_http_status"] not in _OK_STATUSES or media["uploaded_at"] is None:
            raise not_found("Media not yet uploaded")
        if self._blobs.size(media["bucket_path"]) is None:
            raise not_found("Media not yet uploaded")
        info = self.download_info(base_url, project_id, media)
        info["uploadedAt"] = iso(media["uploaded_at"])
        return info

    def uploaded_media(self, project_id: str, media_ids: list[str]) -> dict[str, dict[str, Any]]:
        """The uploaded media records among ``media_ids`` (for resolving references in stored IO)."""
        with self._engine.connect() as conn:
            found = store.get_media_many(conn, project_id, sorted(set(media_ids)))
        return {k: v for k, v in found.items() if v["upload_http_status"] in _OK_STATUSES}

    # --- the signed blob URLs -------------------------------------------------------------------------------

    def begin_upload(
        self,
        project_id: str,
        object_name: str,
        expires: str | None,
        signature: str | None,
        headers: dict[str, str],
    ) -> UploadSink:
        """Check a PUT on an upload URL before reading its body; -> the sink for the bytes."""
        media = self._verified("PUT", project_id, object_name, expires, signature)
        content_type = (headers.get("content-type") or "").split(";", 1)[0].strip().lower()
        if content_type != media["content_type"]:
            raise bad(
                f"Content-Type must be {media['content_type']}, the type this upload URL was issued for"
            )
        declared = headers.get("content-length")
        if declared is not None and declared.strip() != str(media["content_length"]):
            raise bad(f"Content-Length must be {media['content_length']}, as announced in contentLength")
        checksum = headers.get("x-amz-checksum-sha256")
        if checksum is not None and checksum.strip() != media["sha_256_hash"]:
            raise bad("x-amz-checksum-sha256 does not match the sha256Hash this upload URL was issued for")
        hex_digest = headers.get("x-amz-content-sha256")
        if hex_digest is not None and re.fullmatch(r"[0-9a-fA-F]{64}", hex_digest.strip()):
            if base64.b64encode(bytes.fromhex(hex_digest.strip())).decode() != media["sha_256_hash"]:
                raise bad("x-amz-content-sha256 does not match the sha256Hash this upload URL was issued for")
        return UploadSink(project_id, media)

    def finish_upload(self, sink: UploadSink) -> None:
        media = sink.media
        try:
            if sink.received != media["content_length"]:
                raise bad(
                    f"Received {sink.received} bytes, but contentLength announced {media['content_length']}"
                )
            if base64.b64encode(sink.hasher.digest()).decode() != media["sha_256_hash"]:
                raise bad("The SHA-256 of the body does not match the sha256Hash of the upload request")
            sink.spool.seek(0)
            self._blobs.put(media["bucket_path"], sink.spool)
        finally:
            sink.close()
        # the server has seen every byte, so the upload is recorded now; the SDK's PATCH comes on top
        now = now_ms()
        with write_transaction(self._engine) as conn:
            store.update_media(
                conn,
                sink.project_id,
                media["id"],
                {
                    "uploaded_at": now,
                    "upload_http_status": 200,
                    "upload_http_error": None,
                    "updated_at": now,
                },
            )

    def open_download(
        self, project_id: str, object_name: str, expires: str | None, signature: str | None
    ) -> tuple[BinaryIO, str, int, str]:
        """-> (the bytes, their content type, their size, the stored object's file name)"""
        media = self._verified("GET", project_id, object_name, expires, signature)
        handle = self._blobs.open(media["bucket_path"])
        if handle is None:
            raise not_found("Media not found")
        size = self._blobs.size(media["bucket_path"]) or 0
        return handle, media["content_type"], size, media["bucket_path"].rsplit("/", 1)[-1]
