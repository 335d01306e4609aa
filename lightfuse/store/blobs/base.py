"""The contract every blob store keeps, and the key rules they share."""

from __future__ import annotations

import re
from typing import BinaryIO, Protocol, runtime_checkable

_SEGMENT = re.compile(r"[A-Za-z0-9_.\-]{1,200}")


class InvalidKey(ValueError):
    """A key that could escape the store (``..``, absolute, empty segments) or has odd characters."""


def key_segments(key: str) -> list[str]:
    """The ``/``-separated segments of a valid key; InvalidKey for anything path-like.

    Keys come from our own records, but they embed client-chosen ids. The local store maps segments to
    directories, and S3 would happily store ``a/../b`` as a literal name that proxies and tools then resolve
    differently, so every store refuses the same things.
    """
    parts = key.split("/")
    if any(not _SEGMENT.fullmatch(p) or p in (".", "..") for p in parts):
        raise InvalidKey(f"invalid blob key: {key!r}")
    return parts


class BlobStore(Protocol):
    """Objects addressed by ``/``-separated keys such as ``<projectId>/<mediaId>.png``.

    ``put`` is atomic: readers see the old object or the whole new one, never a partial write. ``open`` returns
    a readable binary file (the caller closes it) or None when there is no such object. ``delete`` of a
    missing object is not an error.
    """

    def put(self, key: str, data: BinaryIO) -> int:
        """Store everything ``data`` yields from its current position; -> bytes written."""
        ...

    def open(self, key: str) -> BinaryIO | None: ...

    def size(self, key: str) -> int | None: ...

    def delete(self, key: str) -> None: ...


@runtime_checkable
class PresigningBlobStore(BlobStore, Protocol):
    """A store that clients can reach directly (S3): it hands out URLs that carry their own authorisation.

    Services check for it with ``isinstance`` and otherwise serve the bytes themselves. An upload URL is bound
    to the content type, length and SHA-256 (standard base64) the client announced: the store rejects a PUT
    whose headers or body differ.
    """

    def presigned_upload_url(
        self, key: str, *, content_type: str, content_length: int, sha256_b64: str, expires_in: int
    ) -> str: ...

    def presigned_download_url(
        self,
        key: str,
        *,
        expires_in: int,
        content_type: str | None = None,
        content_disposition: str | None = None,
    ) -> str:
        """A GET URL; the store answers it with the given Content-Type and Content-Disposition if set."""
        ...
