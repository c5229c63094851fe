"""The storage errors, in a module of their own so that every storage module (db, lease,
bulk) can raise them without importing db.py."""

from __future__ import annotations

import errno
import shutil
from pathlib import Path

_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
_NO_SPACE_TEXT = ("No space left on device", "Disk quota exceeded")


class StorageError(RuntimeError):
    """A database or run-lease problem the user can act on: shown as one line, no traceback.
    `resumable`: whether rerunning the same command is the advice (a full disk, once freed)
    or not (a corrupt file, a path that cannot hold a database)."""

    resumable = True


class DatabaseLockedError(StorageError):
    """Another process holds the database file past our retry budget."""


class DatabaseCorruptError(StorageError):
    """The database file fails its checks before anything is written to it: it is left
    exactly as it was, and resuming on it is not offered."""

    resumable = False


class DatabaseLocationError(StorageError):
    """The database path cannot hold a database (a directory, a read-only folder): said
    before anything is created."""

    resumable = False


class DiskFullError(StorageError):
    """No space left where the database lives: named once, with what is free."""


def no_space(exc: BaseException | None) -> bool:
    """Whether `exc`, or an exception it was raised from or during, is a full disk
    (ENOSPC / EDQUOT, or DuckDB's text for it)."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in _NO_SPACE:
            return True
        if any(text in str(exc) for text in _NO_SPACE_TEXT):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def free_bytes(path: Path) -> int | None:
    """Free bytes on the file system holding `path` (its nearest existing folder)."""
    for folder in [path, *path.parents]:
        if folder.exists():
            try:
                return shutil.disk_usage(folder).free
            except OSError:
                return None
    return None


def disk_full(db_path: Path) -> DiskFullError:
    folder = db_path.resolve().parent
    free = free_bytes(folder)
    shown = f"{free:,} bytes free" if free is not None else "free space unknown"
    return DiskFullError(
        f"no space left on the device holding {folder} (database {db_path}; {shown}); "
        "free space there, or point --db at another disk")
