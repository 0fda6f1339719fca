"""RuntimeManager: one worker process per thread id, fed blocks of code, timed and policed.

One instance lives in the daemon (and one in an llm-exec process when there is no
daemon). It is thread-safe: calls for different threads run at the same time, each in
its own worker; calls for the same thread wait their turn.

    execute(thread_id, code, *, timeout, memory_mb=None, context=None) -> dict
    evaluate(thread_id, expression, *, timeout) -> dict
    interrupt(thread_id) -> dict
    reset(thread_id) -> dict
    threads() -> list[dict]
    close() -> None

Every result is plain JSON-serialisable data (the daemon forwards it over its socket);
nothing the user's code does makes these methods raise. The shapes are documented on
`execute` and `evaluate`.

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
import hashlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Self

from llmtools.runtime import snapshot
from llmtools.runtime.outcome import BlockRun
from llmtools.errors import Terminated
from llmtools.runtime.process import (
    EOF,
    TIMEOUT,
    WOKEN,
    EventReader,
    SignalLatch,
    WorkerProcess,
    describe_exit,
    now_iso,
)

DEFAULT_INTERRUPT_GRACE = 2.0
START_TIMEOUT = 30.0
# How long close() lets an idle worker finish the snapshot it is writing before killing
# it: the snapshot is the thread's variables for the next process (without a daemon,
# the only copy), and its own budget already bounds it. A loaded machine needs seconds.
CLOSE_WAIT = snapshot.DEFAULT_BUDGET + 2.0


def default_snapshot_dir() -> Path:
    from llmtools.config import ensure_private_dir, paths

    return ensure_private_dir(paths().data_dir / "runtime")


def snapshot_file_name(thread_id: str) -> str:
    """A file name for any thread id: readable when the id is tame, unique always."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", thread_id)[:64].lstrip(".")
    if safe != thread_id or not safe:
        safe = f"{safe}-{hashlib.sha256(thread_id.encode()).hexdigest()[:12]}"
    return f"{safe}.snapshot"


class RuntimeUnavailable(Exception):
    """A worker process could not be started."""


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

    # --- workers ------------------------------------------------------------------

    def _snapshot_path(self, thread_id: str) -> Path | None:
        if not self._persist:
            return None
        if self._snapshot_dir is None:
            self._snapshot_dir = default_snapshot_dir()
        else:
            self._snapshot_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        return self._snapshot_dir / snapshot_file_name(thread_id)

    def _worker(self, thread_id: str) -> WorkerProcess:
        with self._lock:
            if self._closed:
                raise RuntimeUnavailable("the runtime manager is closed")
            worker = self._workers.get(thread_id)
            if worker is None:
                worker = WorkerProcess(thread_id, self._snapshot_path(thread_id))
                self._workers[thread_id] = worker
            return worker

    @staticmethod
    def _environment() -> dict:
        env = dict(os.environ)
        # The worker must import this same llmtools, also when run from a checkout's bin/.
        root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        # Each glibc malloc arena reserves 64 MB of address space, which would count
        # against RLIMIT_AS without any memory being used.
        env.setdefault("MALLOC_ARENA_MAX", "2")
        return env

    def _start(self, worker: WorkerProcess) -> dict:
        """Start the worker's process (restoring its snapshot); the ready event."""
        read_end, write_end = os.pipe()
        try:
            process = subprocess.Popen(
                # -P: never import code from the caller's directory, where the worker runs.
                [sys.executable, "-P", "-m", "llmtools.runtime.worker", str(read_end)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, pass_fds=(read_end,),
                start_new_session=True, env=self._environment())
        except OSError as error:
            os.close(write_end)
            raise RuntimeUnavailable(f"cannot start a Python worker: {error}") from None
        finally:
            os.close(read_end)
        worker.process, worker.lifeline = process, write_end
        worker.reader = EventReader(process.stdout.fileno())
        worker.started = now_iso()
        try:
            worker.send({"op": "init", "thread_id": worker.thread_id, "restore": True,
                         "snapshot_path": str(worker.snapshot_path) if worker.snapshot_path else None,
                         "snapshot_budget": self.snapshot_budget})
            ready = worker.reader.next(time.monotonic() + self.start_timeout)
        except BaseException:
            worker.kill()
            raise
        if not isinstance(ready, dict) or ready.get("event") != "ready":
            returncode = worker.kill()
            raise RuntimeUnavailable(f"the Python worker for thread {worker.thread_id!r} did not start "
                                     f"(it {describe_exit(returncode)})")
        return ready

    # --- running code -----------------------------------------------------------------

    def execute(self, thread_id: str, code: str, *, timeout: float, memory_mb: int | None = None,
                context: dict | None = None) -> dict:
        """Run `code` statement by statement in the thread's namespace.

        Returns:
            ok                 no statement failed, timed out or crashed
            thread_id, pid     the worker that ran it
            statements         one dict per statement that started, in order:
                               index, line, source, status ("ok", "error", "timeout",
                               "interrupted", "crashed"), duration_s, value (repr of an
                               expression statement's value, or None), value_type, stdout,
                               stderr, results (values passed to result())
            statements_total   how many statements the block has
            stdout, stderr     everything the block printed, joined
            results            every result() value: {"type", "text", "json" (if JSON-able)}
            error              None, or type, message, statement (its source), index,
                               line, traceback (without the runtime's frames), locals
                               (name, type, short repr of each variable)
            timed_out          a statement ran past `timeout` and was stopped
            interrupted        stopped by interrupt() or Ctrl-C
            restarted          the worker was replaced (killed or died) during this call
            restored           when a worker (re)started from a snapshot: names,
                               lost (name, reason: not picklable), error, created
            dropped_bytes      output beyond the capture limit, per stream
            duration_s
        `context` is for the helpers: model, model_options (temperature, max_tokens,
        thinking, timeout), log (bool), cwd (the caller's working directory).
        """
        return self._run(thread_id, {"op": "execute", "code": code, "context": context or {},
                                     "memory_mb": memory_mb}, timeout)

    def evaluate(self, thread_id: str, expression: str, *, timeout: float) -> dict:
        """Evaluate an expression (or run statements) in the thread's namespace.

        Returns ok, thread_id, value (str() of a string, repr() of anything else; None when
        the value is None or the code ends in a statement), value_type, stdout, stderr,
        results, error, timed_out, interrupted, restarted, restored, duration_s.
        """
        run = self._run(thread_id, {"op": "evaluate", "code": expression, "context": {},
                                    "memory_mb": None}, timeout)
        last = run["statements"][-1] if run["statements"] else {}
        ran = run["ok"] and last.get("status") == "ok"
        return {
            "ok": run["ok"],
            "thread_id": thread_id,
            "value": last.get("value") if ran else None,
            "value_type": last.get("value_type", "NoneType") if ran else None,
            **{key: run[key] for key in ("stdout", "stderr", "results", "error", "timed_out",
                                         "interrupted", "restarted", "restored", "duration_s")},
        }

    def _unavailable(self, thread_id: str, message: str) -> dict:
        run = BlockRun(thread_id, 0)
        run.error = {"type": "RuntimeUnavailable", "message": message, "statement": "",
                     "index": None, "line": None, "traceback": "", "locals": []}
        return run.result()

    def _run(self, thread_id: str, request: dict, timeout: float) -> dict:
        try:
            worker = self._worker(thread_id)
        except RuntimeUnavailable as error:
            return self._unavailable(thread_id, str(error))
        with worker.lock:
            if worker.discarded:
                return self._unavailable(thread_id, "the thread was reset while this call waited")
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
                if had_one:  # it died between calls (killed from outside, say)
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
                self._collect(worker, request, run, timeout)
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

    def _collect(self, worker: WorkerProcess, request: dict, run: BlockRun, timeout: float) -> None:
        """Send the request and follow the worker's events to the end of the block.

        Every event pushes the deadline `timeout` seconds on, so the clock runs per
        statement. Past it: SIGINT, then after the grace period SIGKILL.
        """
        assert worker.reader is not None
        deadline = time.monotonic() + timeout
        interrupt_deadline: float | None = None
        interrupted_for: str | None = None  # "timeout" or "cancel"
        stop_signal: int | None = None  # Ctrl-C or SIGTERM that came while the block ran
        # The latch goes up before the request goes out: from then on the worker may be
        # running the block, and a signal must reach it as a cancel, never as an
        # exception that abandons the worker (and the snapshot it is about to write).
        with SignalLatch() as latch:
            try:
                accepted = worker.send(request, deadline)
            except OSError:
                accepted = False
            if not accepted:
                returncode = worker.kill()
                how = (describe_exit(returncode) if returncode != -signal.SIGKILL
                       else f"did not take the block within {timeout:g} s and was killed")
                run.worker_gone(how, None, None)
                stop_signal = latch.take()  # passed on below, as after a block
            while accepted:
                if worker.cancel_requested and interrupted_for != "cancel":
                    # interrupt() or Ctrl-C has cancelled the block: it has the grace period to stop.
                    interrupted_for = "cancel"
                    interrupt_deadline = time.monotonic() + self.interrupt_grace
                event = worker.reader.next(interrupt_deadline or deadline, wake_fd=latch.read_fd)
                signum = latch.take()
                if signum is not None:
                    # Ctrl-C or SIGTERM in this process (llm-exec without a daemon): stop the
                    # statement, keep the thread's variables (and the snapshot the worker
                    # writes after the block), then pass the signal on. A second one does
                    # not wait for the statement.
                    if stop_signal is not None:
                        worker.kill()
                        run.worker_gone("was killed", None, "cancel")
                        break
                    stop_signal = signum
                    worker.request_cancel()
                if event is WOKEN:
                    continue
                if worker.cancel_requested and interrupted_for != "cancel":
                    # The cancel came while we waited: what the worker says now is its answer to it.
                    interrupted_for = "cancel"
                    interrupt_deadline = time.monotonic() + self.interrupt_grace
                if event is TIMEOUT:
                    if interrupt_deadline is None:
                        interrupted_for = "timeout"
                        worker.signal(signal.SIGINT)
                        interrupt_deadline = time.monotonic() + self.interrupt_grace
                        continue
                    worker.kill()
                    run.worker_gone("was killed", None, interrupted_for)
                    break
                if event is EOF:
                    returncode = worker.kill()
                    run.worker_gone(describe_exit(returncode), None, interrupted_for)
                    break
                kind = event.get("event")
                worker.mark_on_request(kind not in ("done", "fatal"))
                if kind == "block":
                    run.statements_total = event.get("statements_total")
                elif kind == "statement":
                    run.statement_started(event)
                    deadline = time.monotonic() + timeout
                elif kind == "statement_done":
                    run.statement_done(event, interrupted_for)
                    deadline = time.monotonic() + timeout
                    if interrupted_for == "timeout":
                        # The interrupted statement has ended (or had just ended on its own).
                        interrupt_deadline = interrupted_for = None
                elif kind == "done":
                    run.finished = True
                    if event.get("error") is not None and run.error is None:
                        run.error = event["error"]  # a syntax error or refused memory limit
                    if event.get("statements_total") is not None:
                        run.statements_total = event["statements_total"]
                    run.dropped_bytes = event.get("dropped_bytes") or {}
                    break
                elif kind == "fatal":
                    run.finished = True
                    run.error = {"type": "RuntimeError", "message": f"runtime failure: {event.get('message')}",
                                 "statement": "", "index": None, "line": None, "traceback": "",
                                 "locals": []}
                    break
        if stop_signal == signal.SIGTERM:
            raise Terminated()
        if stop_signal is not None:
            raise KeyboardInterrupt

    # --- management ------------------------------------------------------------------

    def interrupt(self, thread_id: str) -> dict:
        """Stop the statement the thread is running (as Ctrl-C would); variables are kept."""
        with self._lock:
            worker = self._workers.get(thread_id)
        busy = worker is not None and worker.busy
        if busy:
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
        path = worker.snapshot_path if worker is not None else None
        if path is None and self._persist:
            path = self._snapshot_path(thread_id)
        if path is not None:
            existed = existed or path.exists()
            path.unlink(missing_ok=True)
            for leftover in path.parent.glob(f".{path.name}.*.tmp"):
                leftover.unlink(missing_ok=True)
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

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
