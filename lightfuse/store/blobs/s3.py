"""``BlobStore`` on S3 or an S3-compatible service (LANGFUSE_S3_MEDIA_UPLOAD_*), with presigned URLs.

Only this module imports boto3, and only the composition root imports this module (when a bucket is
configured): the embedded default never pays for loading botocore.

Object keys are ``<prefix><key>``, the prefix glued on as is (Langfuse's layout: a prefix such as ``media/``
carries its own slash). Keys are validated like the local store's, so the same records work on both.
"""

from __future__ import annotations

from typing import BinaryIO, cast

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from lightfuse.store.blobs.base import key_segments

# what S3 (and compatible services) answer for an object that is not there: GetObject says NoSuchKey,
# HeadObject has no body and so only the status
_MISSING_CODES = frozenset({"404", "NoSuchKey", "NotFound"})


def _is_missing(exc: ClientError) -> bool:
    return str(exc.response.get("Error", {}).get("Code")) in _MISSING_CODES


class _CountingReader:
    """Passes ``read`` through and counts the bytes, so ``put`` can report its size.

    It deliberately has no ``seek``: boto3 then streams the source once, in order, instead of seeking around
    in it from several threads (which a caller's file object may not support).
    """

    def __init__(self, source: BinaryIO) -> None:
        self._source = source
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        chunk = self._source.read(size)
        self.count += len(chunk)
        return chunk


class S3BlobStore:
    def __init__(
        self,
        bucket: str,
        *,
        prefix: str = "",
        region: str | None = None,
        endpoint: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        force_path_style: bool = False,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix
        config = Config(
            signature_version="s3v4",
            # FORCE_PATH_STYLE=false means virtual-hosted in Langfuse too; botocore still falls back to the path
            # style where a host name cannot carry the bucket (IP endpoints, names with dots over https)
            s3={"addressing_style": "path" if force_path_style else "virtual"},
            # botocore >= 1.36 adds CRC32 trailers to every upload by default, which several S3-compatible
            # services (older MinIO, Ceph, ...) refuse; send checksums only where an operation needs them
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            retries={"mode": "standard", "max_attempts": 3},
        )
        # a session of our own: boto3's module-level default session is shared, mutable state
        session = boto3.session.Session()
        # no keys -> boto3's default chain (environment, profile, instance/task role), like Langfuse
        self._client = session.client(
            "s3",
            region_name=region or None,
            endpoint_url=endpoint or None,
            aws_access_key_id=access_key_id or None,
            aws_secret_access_key=secret_access_key or None,
            config=config,
        )

    def __repr__(self) -> str:  # the client's repr would be harmless, but say what matters and nothing more
        return f"S3BlobStore(bucket={self.bucket!r}, prefix={self.prefix!r})"

    def _object_key(self, key: str) -> str:
        key_segments(key)  # raises InvalidKey
        return self.prefix + key

    # --- BlobStore ----------------------------------------------------------------------------------------------

    def put(self, key: str, data: BinaryIO) -> int:
        # S3 makes an object visible only once it is complete (single PUT or completed multipart upload),
        # which is the atomicity the protocol promises
        reader = _CountingReader(data)
        self._client.upload_fileobj(reader, self.bucket, self._object_key(key))
        return reader.count

    def open(self, key: str) -> BinaryIO | None:
        try:
            response = self._client.get_object(Bucket=self.bucket, Key=self._object_key(key))
        except ClientError as exc:
            if _is_missing(exc):
                return None
            raise
        # botocore's StreamingBody: read(n) and close(), which is all callers use
        return cast(BinaryIO, response["Body"])

    def size(self, key: str) -> int | None:
        try:
            response = self._client.head_object(Bucket=self.bucket, Key=self._object_key(key))
        except ClientError as exc:
            if _is_missing(exc):
                return None
            raise
        return int(response["ContentLength"])

    def delete(self, key: str) -> None:
        # S3 answers 204 for a key that is not there, which is the protocol's idempotent delete
        self._client.delete_object(Bucket=self.bucket, Key=self._object_key(key))

    # --- PresigningBlobStore ------------------------------------------------------------------------------------

    def presigned_upload_url(
        self, key: str, *, content_type: str, content_length: int, sha256_b64: str, expires_in: int
    ) -> str:
        """A PUT URL whose signature covers Content-Type, Content-Length and x-amz-checksum-sha256.

        The client must send exactly those headers (the Langfuse SDKs do); S3 refuses any other type or
        length (signature mismatch) and any body whose SHA-256 differs from the checksum (BadDigest).
        """
        return self._client.generate_presigned_url(
            "put_object",
            Params={
                "Bucket": self.bucket,
                "Key": self._object_key(key),
                "ContentType": content_type,
                "ContentLength": content_length,
                "ChecksumSHA256": sha256_b64,
            },
            ExpiresIn=expires_in,
            HttpMethod="PUT",
        )

    def presigned_download_url(
        self,
        key: str,
        *,
        expires_in: int,
        content_type: str | None = None,
        content_disposition: str | None = None,
    ) -> str:
        """A GET URL; the type and disposition given are signed into it as S3's response-header overrides
        (``response-content-type``, ``response-content-disposition``), so S3 answers with them."""
        params = {"Bucket": self.bucket, "Key": self._object_key(key)}
        if content_type:
            params["ResponseContentType"] = content_type
        if content_disposition:
            params["ResponseContentDisposition"] = content_disposition
        return self._client.generate_presigned_url("get_object", Params=params, ExpiresIn=expires_in)
