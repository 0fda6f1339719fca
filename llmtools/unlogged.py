"""When the exchange log cannot be written: the answer still goes out, the user is told once.

A read-only or unwritable state directory, a read-only or corrupt database, a full disk:
none of these may cost the user the answer they waited (and maybe paid) for. The call
goes on without its log row, one warning line names the cause, and the entry wrapper
turns what would have been status 0 into ExitStatus.NOT_LOGGED (74, EX_IOERR), so
scripts can still tell that the log is missing something.
"""

from __future__ import annotations

import errno
import os
import sqlite3
from pathlib import Path

_causes: list[str] = []

# SQLite's words for what went wrong, in the words a user acts on.
_SQLITE_CAUSES = (
    ("readonly database", "the log database is read-only"),
    ("disk is full", "the disk is full"),
    ("disk i/o error", "the disk failed to write (full, or an I/O error)"),
    ("not a database", "the log database is corrupt (move it aside to start a new one)"),
    ("malformed", "the log database is corrupt (move it aside to start a new one)"),
    ("unable to open database file", "the log database cannot be opened (is its directory writable?)"),
    ("database is locked", "the log database stayed locked by another process"),
)


def describe(error: BaseException, path: Path | None = None) -> str:
    """One line naming why the log could not be used."""
    if path is not None and _read_only_file_system(path):
        cause = "the log database is on a read-only file system"
    elif isinstance(error, sqlite3.Error):
        text = str(error).lower()
        cause = next((words for key, words in _SQLITE_CAUSES if key in text), f"SQLite: {error}")
        if "disk i/o error" in text and path is not None and _no_space_left(path):
            cause = "the disk is full"
    elif isinstance(error, OSError):
        if error.errno == errno.ENOSPC:
            cause = "the disk is full"
        elif error.errno == errno.EROFS:
            cause = "the state directory is on a read-only file system"
        else:
            where = f" {error.filename}" if error.filename else ""
            cause = f"cannot write{where}: {error.strerror or error}"
    else:
        cause = str(error)
    return f"{cause} ({path})" if path is not None else cause


def _read_only_file_system(path: Path) -> bool:
    for directory in (path.parent, *path.parents):
        try:
            return bool(os.statvfs(directory).f_flag & os.ST_RDONLY)
        except OSError:
            continue  # not made yet: the nearest existing directory decides
    return False


def _no_space_left(path: Path) -> bool:
    """SQLite reports ENOSPC while creating its WAL index as a plain I/O error: look."""
    try:
        info = os.statvfs(path.parent)
    except OSError:
        return False
    return info.f_bavail * info.f_frsize < 64 * 1024


def record(error: BaseException, path: Path | None = None) -> str:
    """Note that a log write failed; return the warning to show (empty after the first)."""
    cause = describe(error, path)
    first = not _causes
    _causes.append(cause)
    return f"not logged: {cause}" if first else ""


def failed() -> bool:
    return bool(_causes)


def reset() -> None:
    """For a process that runs several commands (tests): start clean."""
    _causes.clear()
