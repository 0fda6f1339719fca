"""Local GGUF models through llama-cpp-python: `-m local:smollm2`, `-m /path/model.gguf`.

One `LocalProvider` holds one loaded model, in a worker process of its own
(`llmtools.providers.local_worker`, running `llama_engine.LlamaEngine`). Creating the
provider costs nothing: the file is found (and a catalogue model pulled, with a notice, if
it is not there yet), checked, and the worker started and the model loaded on the first
request, or by `load()`, which a long-lived process such as the daemon may call to warm
it. Later requests on the same instance reuse the worker and its KV cache. Requests run
one at a time (a lock is held for the whole of a generation); `close()` ends the worker.

Why a process: a native crash in llama.cpp (SIGILL from a build for another CPU, SIGSEGV,
abort, the OOM killer) must cost one request, not the daemon with its browser and Python
runtimes, nor kill a command without a word. A dead worker becomes `ModelCrashed` (exit
69), one line naming the signal and what to do; the next request starts a fresh worker.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from llmtools.errors import ModelCrashed, ServiceUnavailable, error_from_json
from llmtools.launch import EOF, TIMEOUT, EventReader, describe_exit, kill_group
from llmtools.notices import tell
from llmtools.providers.base import Event, ModelSpec, Provider, Request, event_from_json

CANCEL_GRACE_S = 10.0  # a worker that does not stop this long after a cancel is killed
REBUILD_HINT = ("rebuild it for this machine: `scripts/install-llama-cpp .venv/bin/python` in an "
                "llmtools checkout (or `make setup`), or pip install llama-cpp-python with "
                "CMAKE_ARGS=\"-DGGML_NATIVE=OFF\"")


class LocalProvider(Provider):
    name = "local"
    # Network settings and the name it was asked by do not matter to loaded weights.
    warm_key_ignores = ("name", "timeout", "max_retries", "retry_base_delay")

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__(spec)
        self._path: Path | None = None
        self._worker: ModelWorker | None = None
        self._lock = threading.Lock()

    @property
    def path(self) -> Path:
        """The model file (found, and pulled if it is a catalogue model, on first use)."""
        if self._path is None:
            from llmtools.localmodels import ensure_model_file

            self._path = ensure_model_file(self.spec.model_id, self.spec.name)
        return self._path

    @property
    def worker_pid(self) -> int | None:
        worker = self._worker
        return worker.pid if worker is not None and worker.alive() else None

    @property
    def is_loaded(self) -> bool:
        return self.worker_pid is not None

    @property
    def context_size(self) -> int:
        with self._lock:
            return self._running_worker().context_size

    def load(self) -> None:
        """Find, check and load the model now (idempotent, thread-safe)."""
        with self._lock:
            self._running_worker()

    def _running_worker(self) -> ModelWorker:
        if self._worker is not None:
            if self._worker.alive():
                return self._worker
            self._worker.kill()  # died while idle (the OOM killer, say): reap it, close its pipes
        from llmtools import localmodels

        path = self.path
        localmodels.check_gguf(path)  # refuse a file that is not a model before starting anything
        self._worker = ModelWorker.start(self.spec, path)
        return self._worker

    def count_tokens(self, text: str) -> int:
        """Tokens in `text` by the model's own tokenizer (no BOS, special tokens as text)."""
        with self._lock:
            return self._running_worker().count_tokens(text)

    def stream(self, request: Request) -> Iterator[Event]:
        with self._lock:
            yield from self._running_worker().generate(request)

    def close(self) -> None:
        with self._lock:
            worker, self._worker = self._worker, None
        if worker is not None:
            worker.stop()


class ModelWorker:
    """The parent's handle on one model worker process: ops out, events in."""

    def __init__(self, process: subprocess.Popen, spec: ModelSpec) -> None:
        self.process = process
        self.spec = spec
        self.context_size = 0
        assert process.stdout is not None
        self._events = EventReader(process.stdout.fileno())
        self._requests = 0

    @classmethod
    def start(cls, spec: ModelSpec, path: Path) -> ModelWorker:
        from llmtools.launch import child_environment, python_command

        # A local model needs no key: keep keys out of other processes.
        fields = {**dataclasses.asdict(spec), "api_key": None}
        try:
            process = subprocess.Popen(
                python_command("llmtools.providers.local_worker"), stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, env=child_environment(),
                # Its own session: a Ctrl-C meant for the command must reach the worker as
                # a cancel, in order, never as a signal that kills it mid-token.
                start_new_session=True)
        except OSError as error:
            raise ServiceUnavailable(f"cannot start a process for model {spec.name}: {error}") from None
        worker = cls(process, spec)
        try:
            worker._send({"op": "load", "spec": fields, "path": str(path)})
            event = worker._next_event("while loading")
        except BaseException:
            worker.kill()
            raise
        if event.get("event") != "loaded":
            worker.kill()
            raise error_from_json(event)
        worker.context_size = int(event["context_size"])
        return worker

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    # --- ops ---

    def count_tokens(self, text: str) -> int:
        self._send({"op": "count_tokens", "text": text})
        event = self._next_event("while counting tokens")
        if event.get("event") != "tokens":
            raise error_from_json(event)
        return int(event["count"])

    def generate(self, request: Request) -> Iterator[Event]:
        self._requests += 1
        number = self._requests
        self._send({"op": "generate", "id": number, "request": vars(request)})
        finished = False
        try:
            while True:
                data = self._next_event("while answering")
                kind = data.get("event")
                if kind == "done":
                    finished = True
                    return
                if kind == "error":
                    finished = True
                    raise error_from_json(data)
                if kind == "notice":
                    tell(data.get("level", "note"), data.get("text", ""))
                    continue
                event = event_from_json(data)
                if event is not None:
                    yield event
        finally:
            # The consumer stopped early (Ctrl-C, a client gone): stop the worker's answer too.
            # A crashed worker has nothing left to stop.
            if not finished and self.alive():
                self._cancel(number)

    def _cancel(self, number: int) -> None:
        """Stop generation `number` and read up to its end, so the next request starts clean."""
        try:
            self._send({"op": "cancel", "id": number})
            deadline = time.monotonic() + CANCEL_GRACE_S
            while True:
                data = self._next_event("while stopping", deadline)
                if data.get("event") in ("done", "error"):
                    return
        except (ModelCrashed, TimeoutError):
            self.kill()  # its state is unknown: the next request starts a fresh worker
        except BaseException:  # interrupted again while stopping: same, then let it through
            self.kill()
            raise

    # --- the pipe ---

    def _send(self, op: dict) -> None:
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(json.dumps(op, ensure_ascii=False).encode("utf-8") + b"\n")
            self.process.stdin.flush()
        except (BrokenPipeError, ConnectionResetError, ValueError):  # ValueError: closed by kill()
            raise self._crashed("before it was sent a request") from None

    def _next_event(self, doing: str, deadline: float | None = None) -> dict:
        event = self._events.next(deadline)
        if event is TIMEOUT:
            raise TimeoutError(f"model {self.spec.name} did not stop {doing}")
        if event is EOF:
            raise self._crashed(doing)
        return event

    def _crashed(self, doing: str) -> ModelCrashed:
        try:
            returncode = self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            returncode = None
        self.kill()
        return ModelCrashed(crash_message(self.spec.name, returncode, doing))

    # --- ending ---

    def stop(self) -> None:
        """Close its stdin (it exits when its parent is gone) and wait a moment, then kill."""
        with contextlib.suppress(OSError):
            if self.process.stdin is not None:
                self.process.stdin.close()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        self.kill()

    def kill(self) -> None:
        kill_group(self.process)


def crash_message(model: str, returncode: int | None, doing: str) -> str:
    """One line: how the model's process ended, and what the user can do."""
    if returncode == -signal.SIGILL:
        return (f"the process running model {model} was killed by SIGILL {doing}: llama-cpp-python "
                f"was built for instructions this CPU cannot run; {REBUILD_HINT}")
    if returncode == -signal.SIGKILL:
        return (f"the process running model {model} was killed by SIGKILL {doing}, perhaps for "
                f"lack of memory; the next call starts a fresh one")
    return (f"the process running model {model} {describe_exit(returncode)} {doing}; "
            f"the next call starts a fresh one")


@dataclasses.dataclass
class CheckReport:
    model: str
    tokens: int
    seconds: float
    pid: int | None


def check_local_model(name: str) -> CheckReport:
    """Load a local model in its worker and generate one token (`llm models check`)."""
    from llmtools.config import resolve_model
    from llmtools.errors import UsageError
    from llmtools.providers.base import Usage

    try:
        spec = resolve_model(name)  # a configured name, local:NAME or a .gguf path
    except UsageError:
        spec = None
    if spec is None or spec.provider != "local":
        if ":" in name:
            raise UsageError(f"{name} is not a local model")
        spec = resolve_model(f"local:{name}")  # a bare catalogue name: smollm2
    provider = LocalProvider(spec)
    started = time.monotonic()
    try:
        events = list(provider.stream(Request(messages=[{"role": "user", "content": "Say hi."}],
                                              max_tokens=1, temperature=0)))
        pid = provider.worker_pid
    finally:
        provider.close()
    tokens = [event.output_tokens for event in events if isinstance(event, Usage)]
    return CheckReport(spec.name, (tokens or [0])[-1] or 0, time.monotonic() - started, pid)

