"""The contract every blob store keeps."""

from __future__ import annotations

from typing import BinaryIO, Protocol


class InvalidKey(ValueError):
    """A key that could escape the store (``..``, absolute, empty segments) or has odd characters."""


class BlobStore(Protocol):
    """Objects addressed by ``/``-separated keys such as ``<projectId>/<mediaId>.png``.

    ``put`` is atomic: readers see the old object or the whole new one, never a partial write. ``open`` returns
    a readable binary file (the caller closes it) or None when there is no such object.
    """

    def put(self, key: str, data: BinaryIO) -> int:
        """Store everything ``data`` yields from its current position; -> bytes written."""
        ...

    def open(self, key: str) -> BinaryIO | None: ...

    def size(self, key: str) -> int | None: ...

    def delete(self, key: str) -> None: ...
