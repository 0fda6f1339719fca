"""RuntimeManager: one worker process per thread id, fed blocks of code, timed and policed.

One instance lives in the daemon (and one in an llm-exec process when there is no
daemon). It is thread-safe: calls for different threads run at the same time, each in
its own worker; calls for the same thread wait their turn.

    execute(thread_id, code, *, timeout, memory_mb=None, context=None) -> ExecuteResult
    evaluate(thread_id, expression, *, timeout) -> EvaluateResult
    interrupt(thread_id) -> dict
    reset(thread_id) -> dict
    threads() -> list[dict]
    close() -> None

Every result is plain JSON-serialisable data (the daemon forwards it over its socket);
nothing the user's code does makes these methods raise. The shapes are TypedDicts in
`results.py`.

Timeouts are per statement. A statement still running when its time is up gets SIGINT,
which raises KeyboardInterrupt inside it and leaves the namespace as it was; if it has
not stopped `interrupt_grace` seconds later (it swallowed the exception, or it is stuck
in C code), the worker's process group is killed and a new worker is started from the
snapshot saved after the previous block. A worker that dies on its own (os._exit, a
segfault, the OOM killer) is replaced the same way. Results say so: `timed_out`,
`restarted`, and `restored` (which variables came back and which could not be saved).
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Self, cast

from llmtools.runtime import layout, sandbox, snapshot, spawn
from llmtools.runtime.bridge import ServiceBridge
from llmtools.runtime.collect import BlockCollector
from llmtools.runtime.outcome import BlockRun
from llmtools.runtime.process import WorkerProcess
from llmtools.runtime.results import (
    EvaluateResult,
    ExecuteResult,
    HelperContext,
    block_error,
    evaluate_result,
    without_key,
)
from llmtools.runtime.spawn import RuntimeUnavailable

DEFAULT_INTERRUPT_GRACE = 2.0
START_TIMEOUT = 30.0
# How long close() lets an idle worker finish the snapshot it is writing before killing
# it: the snapshot is the thread's variables for the next process (without a daemon,
# the only copy), and its own budget already bounds it. A loaded machine needs seconds.
CLOSE_WAIT = snapshot.DEFAULT_BUDGET + 2.0


def default_snapshot_dir() -> Path:
    from llmtools.statedirs import ensure_private_dir

    return ensure_private_dir(layout.runtime_dir())


def policy_covers(current: dict | None, wanted: dict) -> bool:
    """Whether a worker under `current` may run a call asking for `wanted` without being
    replaced (losing what cannot be pickled): the same policy, but `wanted` may name fewer
    read-only paths (an earlier run's -p files stay readable)."""
    if current is None or {**current, "allow": None} != {**wanted, "allow": None}:
        return False
    have = {(path, bool(writable)) for path, writable in current.get("allow") or []}
    need = {(path, bool(writable)) for path, writable in wanted.get("allow") or []}
    readable = {path for path, _ in have}
    return ({entry for entry in have if entry[1]} == {entry for entry in need if entry[1]}
            and all(path in readable for path, writable in need if not writable))


class RuntimeManager:
    def __init__(self, *, snapshot_dir: Path | str | None = None, persist: bool = True,
                 interrupt_grace: float = DEFAULT_INTERRUPT_GRACE,
                 start_timeout: float = START_TIMEOUT, snapshot_budget: float | None = None) -> None:
        """`snapshot_dir`: where each thread's namespace is saved (default: the data dir's
        `runtime/`); `persist=False` keeps no snapshots at all (no recovery of variables
        after a kill). `interrupt_grace`: how long a timed-out statement has to stop
        after SIGINT before its worker is killed. `snapshot_budget`: seconds a worker
        may spend saving one snapshot (default 10; a value taking over a fifth of it
        is left out)."""
        self._snapshot_dir = Path(snapshot_dir) if snapshot_dir is not None else None
        self._persist = persist
        self.snapshot_budget = snapshot_budget
        self.interrupt_grace = interrupt_grace
        self.start_timeout = start_timeout
        self._lock = threading.Lock()
        self._workers: dict[str, WorkerProcess] = {}
        self._closed = False
        self._temporary_dir: Path | None = None

    # --- workers ------------------------------------------------------------------

    def _base_dir(self) -> Path:
        if self._snapshot_dir is None and self._persist:
            try:
                self._snapshot_dir = default_snapshot_dir()
            except OSError as error:
                # Read-only media or a full disk: the code still runs, its variables just do
                # not outlive the worker process.
                from llmtools.notices import warn

                warn(f"runtime snapshots are off: {error.strerror or error} ({error.filename or ''})")
                self._persist = False
        if self._snapshot_dir is None:
            self._snapshot_dir = self._temporary_dir = Path(tempfile.mkdtemp(prefix="llmtools-runtimes-"))
        else:
            self._snapshot_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        return self._snapshot_dir

    def _thread_dir(self, thread_id: str) -> Path:
        """The thread's directory: its snapshot and its work directory, 0700."""
        base = self._base_dir()
        path = layout.thread_dir(base, thread_id)
        (path / "work").mkdir(mode=0o700, parents=True, exist_ok=True)
        path.chmod(0o700)
        legacy = layout.legacy_snapshot(base, thread_id)
        if self._persist and legacy.exists() and not (path / "snapshot").exists():
            legacy.replace(path / "snapshot")
            (path / "snapshot").chmod(0o600)
        return path

    def _worker(self, thread_id: str) -> WorkerProcess:
        with self._lock:
            if self._closed:
                raise RuntimeUnavailable("the runtime manager is closed")
            worker = self._workers.get(thread_id)
            if worker is None:
                thread_dir = self._thread_dir(thread_id)
                worker = WorkerProcess(thread_id, thread_dir / "snapshot" if self._persist else None,
                                       thread_dir)
                self._workers[thread_id] = worker
            return worker

    def _start(self, worker: WorkerProcess) -> dict:
        ready = spawn.start(worker, snapshot_budget=self.snapshot_budget, start_timeout=self.start_timeout)
        worker.bridge = ServiceBridge(worker)
        return ready

    # --- running code -----------------------------------------------------------------

    def execute(self, thread_id: str, code: str, *, timeout: float, memory_mb: int | None = None,
                context: HelperContext | None = None, sandbox: dict | None = None) -> ExecuteResult:
        """Run `code` statement by statement in the thread's namespace.

        `timeout` bounds each statement; `memory_mb` the worker's address space for this
        block; `context` is what the helpers need (see HelperContext); `sandbox` the
        policy to run it under (sandbox.py; None: the worker's current one, or `off` with
        the default limits). The result's keys are documented on ExecuteResult.
        """
        return self._run(thread_id, {"op": "execute", "code": code, "context": context or {},
                                     "memory_mb": memory_mb}, timeout, sandbox)

    def evaluate(self, thread_id: str, expression: str, *, timeout: float,
                 sandbox: dict | None = None, keep_policy: bool = False) -> EvaluateResult:
        """Evaluate an expression (or run statements) in the thread's namespace; its value
        is the last statement's (see EvaluateResult). With `keep_policy`, `sandbox` is used
        only by a thread that has none yet: a look at the variables (`llm-exec --eval`)
        must not replace the worker, losing what cannot be pickled."""
        with self._lock:
            known = self._workers.get(thread_id)
        if keep_policy and known is not None and known.policy is not None:
            sandbox = None
        return evaluate_result(self._run(thread_id, {"op": "evaluate", "code": expression,
                                                     "context": {}, "memory_mb": None}, timeout, sandbox))

    def _unavailable(self, thread_id: str, message: str) -> ExecuteResult:
        run = BlockRun(thread_id, 0)
        run.error = block_error("RuntimeUnavailable", message)
        return run.result()

    def _run(self, thread_id: str, request: dict, timeout: float, policy: dict | None) -> ExecuteResult:
        try:
            worker = self._worker(thread_id)
        except (RuntimeUnavailable, OSError) as error:
            return self._unavailable(thread_id, str(error))
        with worker.lock:
            result = self._run_locked(worker, request, timeout, policy)
        secrets = sandbox.secret_values()
        key = (worker.caller_model or {}).get("api_key")
        if key:
            secrets.insert(0, key)
        return sandbox.redact_all(result, secrets)

    def _prepare(self, worker: WorkerProcess, request: dict, policy: dict | None) -> bool:
        """The policy and the caller's model for this call; a worker started under another
        policy (another mode, directory or limits) is replaced, its variables restored.
        True when a live worker was replaced."""
        replaced = False
        if policy is not None and not policy_covers(worker.policy, policy):
            if worker.alive():
                worker.retire(CLOSE_WAIT)
                replaced = True
            worker.process = None
            worker.policy = policy
        context = cast(HelperContext, request.get("context") or {})
        if context.get("model"):
            worker.caller_model = context["model"]
        request["context"] = without_key(context)
        if request.get("memory_mb") is None:
            request["memory_mb"] = sandbox.limits_of(worker.policy)["memory_mb"]
        return replaced

    def _run_locked(self, worker: WorkerProcess, request: dict, timeout: float,
                    policy: dict | None) -> ExecuteResult:
        thread_id = worker.thread_id
        if worker.discarded:
            return self._unavailable(thread_id, "the thread was reset while this call waited")
        replaced = self._prepare(worker, request, policy)
        run = BlockRun(thread_id, timeout)
        if not worker.alive():
            had_one = worker.process is not None
            if had_one:
                worker.release()
            try:
                ready = self._start(worker)
            except RuntimeUnavailable as error:
                return self._unavailable(thread_id, str(error))
            run.restored = ready.get("restored")
            if had_one or replaced:  # it died between calls (killed from outside, say), or was replaced
                run.restarted = True
                worker.restarts += 1
        if worker.discarded:
            # close() or reset() came while this call was starting: a worker started
            # now would outlive them (and run the block for nobody).
            worker.kill()
            return self._unavailable(thread_id, "the runtime was closed while this call started")
        run.pid = worker.pid
        worker.busy, worker.cancel_requested = True, False
        try:
            BlockCollector(worker, run, timeout, self.interrupt_grace).collect(request)
        finally:
            worker.busy = False
            worker.mark_on_request(False)
            if not run.finished and worker.alive():
                # Left mid-block (an exception in this thread): the rest of the block's
                # events would be read as the next call's. Kill it; the snapshot stays.
                worker.kill()
        worker.blocks += 1
        worker.statements += len(run.statements)
        if run.worker_lost and not worker.discarded and not self._closed:
            worker.restarts += 1
            run.restarted = True
            try:
                ready = self._start(worker)
            except RuntimeUnavailable as error:
                run.restored = {"names": [], "lost": [], "error": str(error)}
            else:
                run.restored = ready.get("restored")
        return run.result()

    # --- management ------------------------------------------------------------------

    def interrupt(self, thread_id: str) -> dict:
        """Stop the statement the thread is running (as Ctrl-C would); variables are kept."""
        with self._lock:
            worker = self._workers.get(thread_id)
        busy = worker is not None and worker.busy
        if busy and worker is not None:
            worker.request_cancel()  # cancels the block, wherever it is between statements
        return {"ok": True, "thread_id": thread_id, "interrupted": busy}

    def reset(self, thread_id: str) -> dict:
        """Forget the thread: kill its worker (even mid-statement) and delete its snapshot."""
        with self._lock:
            worker = self._workers.pop(thread_id, None)
        existed = worker is not None
        if worker is not None:
            worker.discarded = True
            worker.signal(signal.SIGKILL)
            with worker.lock:  # wait for a call in progress to see the worker gone
                worker.kill()
        base = self._base_dir() if self._persist or self._snapshot_dir is not None else None
        if base is not None:
            existed = existed or layout.has_snapshot(base, thread_id)
            layout.legacy_snapshot(base, thread_id).unlink(missing_ok=True)
            shutil.rmtree(layout.thread_dir(base, thread_id), ignore_errors=True)
        return {"ok": True, "thread_id": thread_id, "existed": existed}

    def threads(self) -> list[dict]:
        with self._lock:
            workers = list(self._workers.values())
        return [{
            "id": worker.thread_id,
            "pid": worker.pid,
            "alive": worker.alive(),
            "busy": worker.busy,
            "started": worker.started,
            "blocks": worker.blocks,
            "statements": worker.statements,
            "restarts": worker.restarts,
            "memory_mb": worker.memory_mb(),
            "sandbox": (worker.policy or {}).get("mode", "off"),
            "snapshot": bool(worker.snapshot_path and worker.snapshot_path.exists()),
        } for worker in workers]

    def close(self) -> None:
        """Stop every worker. Idle ones exit on end-of-file (finishing a snapshot being
        written); busy or slow ones are killed. Snapshots stay, for the next manager."""
        with self._lock:
            self._closed = True
            workers = list(self._workers.values())
            self._workers.clear()
        idle = []
        for worker in workers:
            worker.discarded = True
            if worker.lock.acquire(blocking=False):
                idle.append(worker)
                if worker.process is not None and worker.process.stdin is not None:
                    # End-of-file on its requests: it exits once a snapshot in progress is
                    # written. (Not the lifeline yet: that would end it at once.)
                    with contextlib.suppress(OSError):
                        worker.process.stdin.close()
            else:
                # Busy: the call in progress sees the worker die and releases it itself.
                worker.signal(signal.SIGKILL)
        deadline = time.monotonic() + CLOSE_WAIT
        for worker in idle:
            try:
                if worker.process is not None:
                    try:
                        worker.process.wait(timeout=max(0.0, deadline - time.monotonic()))
                    except subprocess.TimeoutExpired:
                        worker.kill()
                worker.release()
            finally:
                worker.lock.release()
        if self._temporary_dir is not None:
            shutil.rmtree(self._temporary_dir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
