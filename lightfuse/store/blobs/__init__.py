"""Blob storage for media bytes: a local directory or S3, both behind ``BlobStore``.

``S3BlobStore`` lives in ``lightfuse.store.blobs.s3`` and is not imported here, so that only deployments that
configure a bucket load boto3.
"""

from lightfuse.store.blobs.base import BlobStore, InvalidKey, PresigningBlobStore
from lightfuse.store.blobs.local import LocalDirectoryBlobStore

__all__ = ["BlobStore", "InvalidKey", "LocalDirectoryBlobStore", "PresigningBlobStore"]
