"""Where a thread's runtime keeps its things, in one place: the manager makes and removes
them, `llm-exec --threads`, `--eval` and completion look for them.

    <runtime dir>/<name>.thread/snapshot   the namespace, saved after each block
    <runtime dir>/<name>.thread/work       the code's work directory
    <runtime dir>/<name>.snapshot          a snapshot as kept before the sandbox (moved in
                                           when the thread next runs)

Light on purpose (shell completion imports it).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

# Globs, under the runtime directory, that find every thread's snapshot (current, legacy).
SNAPSHOT_GLOBS = ("*.thread/snapshot", "*.snapshot")


def runtime_dir() -> Path:
    """The data dir's `runtime/`, where threads are kept unless a manager is told otherwise."""
    from llmtools.statedirs import paths

    return paths().data_dir / "runtime"


def snapshot_file_name(thread_id: str) -> str:
    """A file name for any thread id: readable when the id is tame, unique always."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", thread_id)[:64].lstrip(".")
    if safe != thread_id or not safe:
        safe = f"{safe}-{hashlib.sha256(thread_id.encode()).hexdigest()[:12]}"
    return f"{safe}.snapshot"


def thread_dir(base: Path, thread_id: str) -> Path:
    """The thread's directory under `base`: its snapshot and its work directory."""
    return base / (snapshot_file_name(thread_id).removesuffix(".snapshot") + ".thread")


def legacy_snapshot(base: Path, thread_id: str) -> Path:
    return base / snapshot_file_name(thread_id)


def has_snapshot(base: Path, thread_id: str) -> bool:
    return (thread_dir(base, thread_id) / "snapshot").exists() or legacy_snapshot(base, thread_id).exists()
