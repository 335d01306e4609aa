"""Blob storage for media bytes: a local directory now, S3 later, both behind ``BlobStore``."""

from lightfuse.store.blobs.base import BlobStore, InvalidKey
from lightfuse.store.blobs.local import LocalDirectoryBlobStore

__all__ = ["BlobStore", "InvalidKey", "LocalDirectoryBlobStore"]
