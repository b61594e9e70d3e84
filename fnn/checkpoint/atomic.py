"""Writing a file so that a crash never leaves a half-written one at its path.

The bytes go to a temporary file in the same directory (so the rename stays
on one file system), which is flushed and ``fsync``-ed, then renamed over
the target with `os.replace` (atomic on POSIX and Windows), and the
directory is ``fsync``-ed so the rename itself survives a power cut. A
process killed at any point leaves either the old file or the new one at
the path, never a mix; what it can leave is a stray ``.<name>.*.tmp`` file,
which `remove_stale` deletes.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from typing import BinaryIO, Iterator

TEMP_SUFFIX = ".tmp"


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """``with atomic_file(path) as f: f.write(...)``: ``path`` gets the bytes only if the
    block finishes; on an exception the temporary file is removed and ``path`` is untouched."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, temporary = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=TEMP_SUFFIX,
                                     dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    _fsync_directory(directory)


def _fsync_directory(directory: str) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:          # e.g. Windows: directories cannot be opened
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def remove_stale(directory: str | os.PathLike) -> list[str]:
    """Delete temporary files left in ``directory`` by writers that were killed; their names."""
    removed = []
    for name in os.listdir(directory):
        if name.startswith(".") and name.endswith(TEMP_SUFFIX):
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(directory, name))
                removed.append(name)
    return removed
