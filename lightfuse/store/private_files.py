"""Owner-only files and directories for everything Lightfuse keeps on local disk.

The data directory holds the SQLite database (every trace, hashed keys, encrypted secrets), the generated
secrets and the media bytes: nothing in it is for other local users. Directories are created 0700 and files
0600 whatever the umask (a umask can only take bits away); ones left wider by an older version are narrowed
when the server starts, as far as the process may (a failure is logged, not fatal).
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

__all__ = ["DIR_MODE", "FILE_MODE", "make_private_dirs", "make_private_file", "narrow_to_owner"]

DIR_MODE = 0o700
FILE_MODE = 0o600
_log = logging.getLogger(__name__)


def make_private_dirs(path: Path) -> None:
    """``mkdir -p`` where every directory created is 0700 (``Path.mkdir`` gives parents the umask default)."""
    missing: list[Path] = []
    current = Path(path)
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for directory in reversed(missing):
        try:
            os.mkdir(directory, DIR_MODE)
        except FileExistsError:  # created meanwhile by another thread or process
            continue


def make_private_file(path: Path) -> None:
    """Create ``path`` empty and 0600 if it does not exist yet (an existing file is left as it is)."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, FILE_MODE)
    except FileExistsError:
        return
    os.close(fd)


def narrow_to_owner(path: Path) -> None:
    """Take group and other permission bits off an existing file or directory; absent paths are skipped."""
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return
    if mode & 0o077:
        try:
            os.chmod(path, mode & 0o700)
        except OSError as exc:
            _log.warning("could not restrict %s to its owner (mode %o): %s", path, mode, exc)
