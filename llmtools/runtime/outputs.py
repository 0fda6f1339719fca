"""Large outputs the model can page through: a statement's whole output, kept on disk.

What the model is shown of a block's output is cut to the head and the tail
(`--max-output`); a statement whose output is over `KEEP_OVER_BYTES` also has all of it
(up to `MAX_KEPT_BYTES`) kept in a file beside the thread's snapshot,
`<snapshot>.outputs/outN.txt`, and its result names the handle `outN`. The helpers
`read_output(handle, start, length)` and `output(handle, page)` return any part of it, so a
result too big for the context is never lost. A thread keeps its last `MAX_OUTPUTS` such
files; a thread without snapshots keeps them in its thread directory (which goes with the
thread: a manager without snapshots keeps its threads in a temporary directory it removes).

Hooked in at one place: `execution._collect_output` calls `keep()` with the region of the
output spool the statement wrote; the worker calls `configure()` at init.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

KEEP_OVER_BYTES = 4096
MAX_KEPT_BYTES = 64 << 20  # also how much a block's Python output may write to its spool
MAX_OUTPUTS = 16
PAGE_CHARS = 4000
TAIL_CHARS = 4000  # the true end of the output, for the tail the model is shown
COPY_CHUNK = 1 << 20

_directory: Path | None = None


_temporary: Path | None = None  # made here, so removed here (discard_temporary) at exit


def configure(snapshot_path: Path | None, directory: str | Path | None = None) -> None:
    """Where this worker keeps outputs: beside the thread's snapshot, else in `directory`
    (in the thread's directory, which goes with the thread), else a temporary dir."""
    global _directory, _temporary
    if snapshot_path is not None:
        _directory = snapshot_path.with_name(snapshot_path.name + ".outputs")
    elif directory is not None:
        _directory = Path(directory)
    else:
        _directory = _temporary = Path(tempfile.mkdtemp(prefix="llmtools-outputs-"))


def discard_temporary() -> None:
    """Remove the temporary directory configure() made, if it did (the worker is ending)."""
    global _temporary
    if _temporary is not None:
        shutil.rmtree(_temporary, ignore_errors=True)
        _temporary = None


def _store() -> Path:
    global _directory
    if _directory is None:
        configure(None)
    assert _directory is not None
    _directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    return _directory


def _numbered(directory: Path) -> list[tuple[int, Path]]:
    found = []
    for path in directory.glob("out*.txt"):
        match = re.fullmatch(r"out(\d+)\.txt", path.name)
        if match:
            found.append((int(match[1]), path))
    return sorted(found)


def keep(fd: int, start: int, end: int) -> dict | None:
    """Copy bytes [start, end) of the spool `fd` to a new kept output; None if it is small."""
    size = min(end - start, MAX_KEPT_BYTES)
    if end - start <= KEEP_OVER_BYTES:
        return None
    directory = _store()
    existing = _numbered(directory)
    number = existing[-1][0] + 1 if existing else 1
    for _, old in existing[:max(0, len(existing) - MAX_OUTPUTS + 1)]:
        old.unlink(missing_ok=True)
    path = directory / f"out{number}.txt"
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        for offset in range(start, start + size, COPY_CHUNK):
            handle.write(os.pread(fd, min(COPY_CHUNK, start + size - offset), offset))
    text = _read(path)
    return {"handle": f"out{number}", "chars": len(text), "lines": text.count("\n"),
            "cut_bytes": max(0, end - start - MAX_KEPT_BYTES), "tail": text[-TAIL_CHARS:]}


def _read(path: Path) -> str:
    return path.read_bytes().decode("utf-8", "replace")


def _path(handle: str) -> Path:
    if not re.fullmatch(r"out\d+", str(handle)):
        raise ValueError(f"{handle!r} is not an output handle (they look like 'out3')")
    path = _store() / f"{handle}.txt"
    if not path.exists():
        raise LookupError(f"no output {handle!r} is kept any more (a thread keeps its last {MAX_OUTPUTS})")
    return path


def read_output(handle: str, start: int = 0, length: int = PAGE_CHARS) -> str:
    """Characters start to start+length of a block's whole output, which the result cut
    short and named by `handle` ("out3"). start may be negative (from the end)."""
    text = _read(_path(handle))
    if start < 0:
        start = max(0, len(text) + start)
    return text[start:start + max(0, int(length))]


def output(handle: str, page: int = 1) -> str:
    """Page `page` (from 1) of a kept output, 4000 characters a page (the note that named
    the handle says how many characters there are)."""
    text = _read(_path(handle))
    pages = max(1, -(-len(text) // PAGE_CHARS))
    page = min(max(1, int(page)), pages)
    return text[(page - 1) * PAGE_CHARS:page * PAGE_CHARS]
