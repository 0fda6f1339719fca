"""Starting one worker process: confined by its sandbox policy, limited, its keys withheld.

The worker is `python -P -m llmtools.runtime.worker LIFELINE_FD`, run directly (`off`)
or under bubblewrap (`workspace`, `read-only`; see sandbox.py). Either way its
environment is scrubbed of secrets and of where our state and the daemon live, it
gets the helper modules and the limits in its `init` request, and the manager learns
the pid to signal (under bubblewrap, the worker's own pid as seen from outside its
PID namespace, not bwrap's).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
import time
from pathlib import Path

from llmtools.launch import EventReader, child_environment, describe_exit, python_command
from llmtools.runtime import sandbox, worker_processes
from llmtools.runtime.process import WorkerProcess, now_iso


class RuntimeUnavailable(Exception):
    """A worker process could not be started."""


def _helper_modules() -> tuple[list[str], list[str]]:
    """The configured helper modules (read here: a confined worker sees no config), and
    the files a confined worker must be able to read to import them."""
    import importlib.util

    from llmtools.errors import LlmtoolsError
    from llmtools.runtime.helpers import configured_modules

    try:
        entries = configured_modules()
    except LlmtoolsError:
        return [], []  # the worker reports the bad setting when it reads none
    readable = []
    for entry in entries:
        if entry.endswith(".py") or os.sep in entry:
            readable.append(str(Path(entry).expanduser().resolve()))
            continue
        with contextlib.suppress(ImportError, ValueError, AttributeError):
            spec = importlib.util.find_spec(entry.split(".")[0])
            if spec is not None and spec.origin and os.path.isabs(spec.origin):
                origin = Path(spec.origin)
                readable.append(str(origin.parent if origin.name == "__init__.py" else origin))
    return entries, readable


def _command(worker: WorkerProcess, lifeline: int, readable: list[str]) -> list[str]:
    argv = python_command("llmtools.runtime.worker", str(lifeline))
    if not worker.confined:
        return argv
    return sandbox.bwrap_command(worker.policy or {}, argv, thread_dir=worker.thread_dir,
                                 work_dir=worker.work_dir, readable=readable)


def _environment(worker: WorkerProcess) -> dict:
    env = sandbox.worker_environment(child_environment(), worker.policy, worker.work_dir)
    # Each glibc malloc arena reserves 64 MB of address space, which would count
    # against RLIMIT_AS without any memory being used.
    env.setdefault("MALLOC_ARENA_MAX", "2")
    return env


def start(worker: WorkerProcess, *, snapshot_budget: float | None, start_timeout: float) -> dict:
    """Start the worker's process (restoring its snapshot); the ready event."""
    helper_entries, readable = _helper_modules()
    limits = sandbox.limits_of(worker.policy)
    read_end, write_end = os.pipe()
    try:
        process = subprocess.Popen(
            _command(worker, read_end, readable), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            pass_fds=(read_end,), start_new_session=True, env=_environment(worker),
            cwd=worker.work_dir)
    except OSError as error:
        os.close(write_end)
        raise RuntimeUnavailable(f"cannot start a Python worker: {error}") from None
    finally:
        os.close(read_end)
    worker.process, worker.lifeline = process, write_end
    worker.signal_pid = process.pid
    assert process.stdout is not None  # stdout=PIPE
    worker.reader = EventReader(process.stdout.fileno())
    worker.started = now_iso()
    try:
        worker.send({"op": "init", "thread_id": worker.thread_id, "restore": True,
                     "snapshot_path": str(worker.snapshot_path) if worker.snapshot_path else None,
                     "outputs_dir": str(worker.thread_dir / "outputs"),
                     "snapshot_budget": snapshot_budget, "helpers": helper_entries,
                     "limits": limits, "confinement": sandbox.describe(worker.policy)})
        ready = worker.reader.next(time.monotonic() + start_timeout)
    except BaseException:
        worker.kill()
        raise
    if not isinstance(ready, dict) or ready.get("event") != "ready":
        returncode = worker.kill()
        hint = ""
        if worker.confined and process.stderr is None:
            hint = " under bubblewrap (try --sandbox off to see whether the sandbox is the cause)"
        raise RuntimeUnavailable(f"the Python worker for thread {worker.thread_id!r} did not start"
                                 f"{hint} (it {describe_exit(returncode)})")
    _settle(worker, ready, limits)
    return ready


def _settle(worker: WorkerProcess, ready: dict, limits: dict) -> None:
    """Before any user code runs: find the worker's real pid, fence in what it may start."""
    assert worker.process is not None
    if worker.confined and isinstance(ready.get("pid"), int):
        worker.signal_pid = worker_processes.outer_pid(worker.process.pid, ready["pid"]) or worker.process.pid
    name = f"{os.getpid()}-{hashlib.sha256(worker.thread_id.encode()).hexdigest()[:12]}-{worker.process.pid}"
    cgroup = worker_processes.pids_cgroup(name, limits["processes"])
    if cgroup is not None:
        if worker_processes.join_cgroup(cgroup, worker_processes.descendants(worker.process.pid)):
            worker.cgroup = cgroup
        else:
            worker_processes.remove_cgroup(cgroup)
