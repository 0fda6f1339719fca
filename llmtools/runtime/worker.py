"""The worker process: one thread's Python namespace, driven over a JSON-lines pipe.

Started by RuntimeManager as `python -m llmtools.runtime.worker LIFELINE_FD`. The
requests arrive on stdin and the events leave on stdout, one JSON object per line;
both are moved to private descriptors at once, and descriptors 0/1/2 become
/dev/null and two spool files, so nothing the user's code prints (or a child process
it starts writes) can corrupt the protocol.

    -> {"op": "init", "thread_id": ..., "snapshot_path": ... | null, "restore": bool,
        "snapshot_budget": seconds}
    <- {"event": "ready", "pid": ..., "restored": {...} | null, "helper_errors": [...]}
    -> {"op": "execute" | "evaluate", "code": ..., "context": {...}, "memory_mb": ... | null}
    <- {"event": "statement", "index": i, "line": n}          as each statement starts
    <- {"event": "statement_done", "statement": {...}, "error": {...} | null}
    <- {"event": "done", "statements_total": n, "error": {...} | null, ...}

After each block it saves a snapshot of the namespace (after "done", so the caller does
not wait for it). SIGINT interrupts a running statement and nothing else (see
InterruptGate); SIGUSR1 cancels the block. LIFELINE_FD is the read end of a pipe whose write end only the manager
holds: when the manager's process dies for any reason, the read sees end-of-file and
the worker exits, even in the middle of a runaway statement.
"""

from __future__ import annotations

import builtins
import json
import os
import signal
import sys
import tempfile
import threading
import traceback
from pathlib import Path

from llmtools.runtime import channel, execution, helpers, limits, outputs, snapshot
from llmtools.runtime.results import HelperContext, ResultValue, block_error

# Sources of this many recent blocks are kept (in the snapshot too) so that tracebacks
# and inspect.getsource() can show functions defined in them.
SOURCES_KEPT = 200
# Room a memory limit must leave above what the worker already maps, or the worker
# could not even report the failure.
MEMORY_HEADROOM = 32 << 20


def _spool_fd() -> int:
    handle, path = tempfile.mkstemp(prefix="llmtools-worker-")
    try:
        return os.open(path, os.O_RDWR | os.O_APPEND)
    finally:
        os.close(handle)
        os.unlink(path)


def _watch_lifeline(fd: int) -> None:
    def watch() -> None:
        # Signals must reach the main thread, where a blocking call they interrupt is running.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGUSR1, signal.SIGTERM})
        try:
            while os.read(fd, 1):
                pass
        except OSError:
            pass
        os._exit(0)

    threading.Thread(target=watch, name="lifeline", daemon=True).start()


def _virtual_memory_bytes() -> int | None:
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


class Worker:
    def __init__(self, protocol_in, protocol_out, diagnostics) -> None:
        self.protocol_out = protocol_out
        self.pid = os.getpid()
        self.write_lock = threading.Lock()  # events come from the main thread and service calls
        self.channel = channel.Channel(protocol_in, self.emit)
        self.diagnostics = diagnostics
        self.gate = execution.InterruptGate()
        self.stdout = (execution.Spool(1), execution.SpoolWriter(1, "<stdout>"))
        self.stderr = (execution.Spool(2), execution.SpoolWriter(2, "<stderr>"))
        self.thread_id = ""
        self.snapshot_path: Path | None = None
        self.snapshot_budget = snapshot.DEFAULT_BUDGET
        self.sources: dict[str, str] = {}
        self.block_number = 0  # blocks the model ran: "<block 3>" in a traceback is its third
        self.eval_number = 0
        self.helper_objects: dict[str, object] = {}
        self.too_slow_to_save: dict[str, int] = {}
        self.namespace = self.fresh_namespace()

    # --- plumbing ----------------------------------------------------------------

    def emit(self, event: dict) -> None:
        if os.getpid() != self.pid:
            # A child the code forked came back into the worker's loop (a fork bomb whose
            # fork finally failed): it must not speak on the protocol. It just ends.
            os._exit(0)
        line = json.dumps(event, ensure_ascii=False, default=str)
        # A lone surrogate in user text would make strict UTF-8 encoding fail.
        with self.write_lock:
            self.protocol_out.write(line.encode("utf-8", "replace") + b"\n")
            self.protocol_out.flush()

    def serve(self) -> None:
        handlers = {"init": self.init, "execute": self.execute, "evaluate": self.evaluate}
        while True:
            line = self.channel.next_request()
            if not line:
                return
            self.gate.cancelled = False  # a cancel is for the block that was running
            try:
                request = json.loads(line)
                handler = handlers[request["op"]]
            except (ValueError, KeyError, TypeError) as error:
                self.emit({"event": "fatal", "message": f"bad request: {error}"})
                continue
            try:
                handler(request)
            except Exception as error:  # noqa: BLE001 - a bug in the worker: report it, keep serving
                traceback.print_exc(file=self.diagnostics)
                self.emit({"event": "fatal", "message": f"{type(error).__name__}: {error}"})

    # --- the namespace -------------------------------------------------------------

    def fresh_namespace(self) -> dict:
        return {"__name__": "__main__", "__doc__": None, "__builtins__": builtins,
                "__llmtools_helpers__": helpers.describe_json}

    def install_helpers(self) -> None:
        self.helper_objects = helpers.installed()
        for name, value in self.helper_objects.items():
            # A restored variable that shadowed a helper (`result = 5`) stays the user's.
            self.namespace.setdefault(name, value)
        self.namespace["__llmtools_helpers__"] = helpers.describe_json
        helpers.STATE.namespace = self.namespace

    def hidden(self, name: str, value: object) -> bool:
        return self.helper_objects.get(name) is value

    def variable_names(self) -> list[str]:
        """The user's names, for `llm-exec --threads` (read from the snapshot, unpickled)."""
        return sorted(name for name, value in self.namespace.items()
                      if not name.startswith("__") and not self.hidden(name, value))

    def take_results(self) -> list[ResultValue]:
        results, helpers.STATE.results = helpers.STATE.results, []
        return results

    # --- requests -----------------------------------------------------------------

    def init(self, request: dict) -> None:
        self.thread_id = str(request.get("thread_id", ""))
        path = request.get("snapshot_path")
        self.snapshot_path = Path(path) if path else None
        outputs.configure(self.snapshot_path, request.get("outputs_dir"))
        self.snapshot_budget = float(request.get("snapshot_budget") or snapshot.DEFAULT_BUDGET)
        limits.apply_fixed(request.get("limits") or {})
        # Helper modules first: functions from them in a snapshot unpickle by reference.
        helpers.load_user_helpers(request.get("helpers"))
        helpers.STATE.confinement = str(request.get("confinement") or "")
        restored = None
        if request.get("restore") and self.snapshot_path is not None and self.snapshot_path.exists():
            restored = self.restore()
        self.install_helpers()
        self.emit({"event": "ready", "pid": os.getpid(), "restored": restored,
                   "helper_errors": helpers.STATE.load_errors})

    def restore(self) -> dict:
        assert self.snapshot_path is not None
        try:
            values, document = snapshot.load(self.snapshot_path)
        except BaseException as error:  # noqa: BLE001 - a bad snapshot must not stop the worker
            return {"names": [], "lost": [], "error": f"{type(error).__name__}: {error}"}
        namespace = values  # the restored functions' globals: it must become the namespace itself
        for key, value in self.fresh_namespace().items():
            namespace.setdefault(key, value)
        namespace["__builtins__"] = builtins
        self.namespace = namespace
        self.sources = dict(document.get("sources") or {})
        for filename, code in self.sources.items():
            execution.remember_source(filename, code)
        self.block_number = int(document.get("blocks") or 0)
        self.eval_number = int(document.get("evals") or 0)
        return {"names": sorted(name for name in values if not name.startswith("__")),
                "lost": list(document.get("skipped") or []), "error": None,
                "created": document.get("created")}

    def memory_problem(self, memory_mb) -> str | None:
        """Set RLIMIT_AS for this block; say why not if the limit is below what is in use."""
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        limits.CURRENT.pop("memory_mb", None)
        if memory_mb:
            limits.CURRENT["memory_mb"] = int(memory_mb)
            wanted = int(memory_mb) << 20
            if hard != resource.RLIM_INFINITY:
                wanted = min(wanted, hard)
            in_use = _virtual_memory_bytes()
            if in_use is not None and wanted < in_use + MEMORY_HEADROOM:
                return (f"the memory limit of {memory_mb} MB is below what this runtime already "
                        f"maps ({(in_use + MEMORY_HEADROOM) >> 20} MB with headroom); raise it")
        else:
            wanted = hard
        if wanted != soft:
            resource.setrlimit(resource.RLIMIT_AS, (wanted, hard))
        return None

    def execute(self, request: dict, *, for_eval: bool = False) -> None:
        context: HelperContext = request.get("context") or HelperContext()
        if "documents" in context:
            # Kept in the namespace, not in the context every helper call reads.
            context = HelperContext(**context)
            self.namespace["documents"] = helpers.documents_from(context.pop("documents"))
        if context or not for_eval:
            # `--eval` sends no context: helpers it calls use the model (and directory)
            # of the thread's last block.
            helpers.STATE.context = context
        if "config" in context:
            from llmtools.config import adopt_config

            adopt_config(context["config"])
        cwd = context.get("cwd")
        if cwd and os.path.isdir(cwd):
            os.chdir(cwd)
        problem = self.memory_problem(request.get("memory_mb"))
        limits.start_block_clock()
        if problem:
            self.emit({"event": "done", "statements_total": 0,
                       "error": block_error("MemoryLimit", problem)})
            return
        if for_eval:
            self.eval_number += 1
            filename = f"<eval {self.eval_number}>"
        else:
            self.block_number += 1
            filename = f"<block {self.block_number}>"
        code = str(request.get("code", ""))
        self.sources[filename] = code
        while len(self.sources) > SOURCES_KEPT:
            self.sources.pop(next(iter(self.sources)))
        block = execution.BlockContext(
            namespace=self.namespace, gate=self.gate, stdout=self.stdout, stderr=self.stderr,
            hidden=self.hidden, take_results=self.take_results, emit=self.emit)
        summary = execution.run_block(code, filename, block, for_eval=for_eval)
        self.emit({"event": "done", **summary})
        self.save_snapshot()

    def evaluate(self, request: dict) -> None:
        self.execute(request, for_eval=True)

    def save_snapshot(self) -> None:
        if self.snapshot_path is None:
            return
        extra = {"sources": self.sources, "blocks": self.block_number, "evals": self.eval_number,
                 "thread_id": self.thread_id, "names": self.variable_names()}
        self.gate.cancelled = False  # a cancel was for the block, which is over
        try:
            # Pickling can run user code (__reduce__, __getstate__), so a runaway one is
            # interruptible like a statement; the previous snapshot then stays.
            self.gate.enter(cancellable=False)
            snapshot.save(self.namespace, self.snapshot_path, hidden=self.hidden, extra=extra,
                          too_slow=self.too_slow_to_save, budget=self.snapshot_budget)
            self.gate.open = False
        except KeyboardInterrupt:
            # The manager needed the worker (a block waited past its timeout): the
            # previous snapshot stays, and the next block's will be taken as usual.
            self.gate.open = False
        except BaseException as error:  # noqa: BLE001 - keep the worker; the old snapshot stays
            self.gate.open = False
            print(f"llm-exec worker {self.thread_id}: snapshot not saved: "
                  f"{type(error).__name__}: {error}", file=self.diagnostics, flush=True)


def main() -> None:
    lifeline = int(sys.argv[1]) if len(sys.argv) > 1 else None
    # The protocol keeps private copies of the pipes; 0/1/2 are handed to the user's code.
    protocol_in = os.fdopen(os.dup(0), "rb")
    protocol_out = os.fdopen(os.dup(1), "wb")
    diagnostics = os.fdopen(os.dup(2), "w", buffering=1, errors="replace")
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    for fd in (1, 2):
        spool = _spool_fd()
        os.dup2(spool, fd)
        os.close(spool)
    sys.stdin = open(os.devnull, encoding="utf-8")  # noqa: SIM115 - input() gets EOFError, never a hang
    worker = Worker(protocol_in, protocol_out, diagnostics)
    execution.use_stdio(worker.stdout[1], worker.stderr[1])
    signal.signal(signal.SIGINT, worker.gate.interrupt_handler)
    signal.signal(signal.SIGUSR1, worker.gate.cancel_handler)
    limits.install_handlers(worker.gate)
    channel.route_services(worker.channel)
    if lifeline is not None:
        _watch_lifeline(lifeline)
    try:
        worker.serve()
    except BrokenPipeError:
        pass  # the manager is gone
    outputs.discard_temporary()
    os._exit(0)  # no interpreter teardown: nothing of the user's should run after this


if __name__ == "__main__":
    main()
