"""``BlobStore`` on a local directory (the embedded default: ``<data_dir>/media``)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import BinaryIO

from lightfuse.store.blobs.base import key_segments
from lightfuse.store.capacity import disk_full_as_store_full
from lightfuse.store.private_files import make_private_dirs, narrow_to_owner


class LocalDirectoryBlobStore:
    def __init__(self, root: Path) -> None:
        self._root = Path(root)
        narrow_to_owner(self._root)  # media written by older versions sat in a 0755 tree

    def _path(self, key: str) -> Path:
        return self._root.joinpath(*key_segments(key))

    def put(self, key: str, data: BinaryIO) -> int:
        path = self._path(key)
        with disk_full_as_store_full():  # ENOSPC -> StoreFull (503), the partial file removed below
            return self._put(path, data)

    @staticmethod
    def _put(path: Path, data: BinaryIO) -> int:
        make_private_dirs(path.parent)  # 0700 directories; mkstemp makes the file 0600
        # write next to the target and rename: a crash or a concurrent reader never sees half an object
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as out:
                shutil.copyfileobj(data, out, 1024 * 1024)
                written = out.tell()
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return written

    def open(self, key: str) -> BinaryIO | None:
        try:
            return open(self._path(key), "rb")  # noqa: SIM115 - the caller closes it
        except FileNotFoundError:
            return None

    def size(self, key: str) -> int | None:
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError:
            return None

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)
