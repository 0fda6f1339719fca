"""The manager's handle on one worker process: its pipes, its signals, reading its events
with a deadline, killing its process group. No policy here: RuntimeManager decides when."""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from llmtools.launch import EventReader, kill_group

if TYPE_CHECKING:
    from llmtools.runtime.bridge import ServiceBridge

# What signal.signal() takes and returns.
SignalHandler = Callable[[int, FrameType | None], Any] | int | signal.Handlers | None


class SignalLatch:
    """Ctrl-C and SIGTERM, held until the manager is ready for them.

    While a block runs in-process (llm-exec without a daemon), a signal raising in the
    middle of the manager's own bookkeeping would abandon the worker mid-block and lose
    the snapshot of what the block did. Instead the handlers only note the signal and
    wake the event read (through `signal.set_wakeup_fd`); the manager then cancels the
    block in order and re-raises once the worker has answered. Only the main thread
    can install handlers, so elsewhere (the daemon's request threads) this is inert.
    """

    def __init__(self) -> None:
        self.received: list[int] = []
        self.read_fd: int | None = None
        self._write_fd: int | None = None
        self._previous: dict[int, SignalHandler] = {}
        self._previous_wakeup = -1

    def __enter__(self) -> SignalLatch:
        if threading.current_thread() is not threading.main_thread():
            return self
        self.read_fd, self._write_fd = os.pipe()
        os.set_blocking(self._write_fd, False)
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._previous[signum] = signal.signal(signum, self._note)
        self._previous_wakeup = signal.set_wakeup_fd(self._write_fd)
        return self

    def _note(self, signum, frame) -> None:
        self.received.append(signum)

    def take(self) -> int | None:
        """The oldest signal not yet handled, if any."""
        if self.read_fd is not None:
            with contextlib.suppress(BlockingIOError, OSError):
                os.set_blocking(self.read_fd, False)
                os.read(self.read_fd, 512)
        return self.received.pop(0) if self.received else None

    def __exit__(self, *exc_info) -> None:
        if self.read_fd is None:
            return
        assert self._write_fd is not None  # both ends are opened together in __enter__
        signal.set_wakeup_fd(self._previous_wakeup)
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        for fd in (self.read_fd, self._write_fd):
            with contextlib.suppress(OSError):
                os.close(fd)


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class WorkerProcess:
    """The manager's handle on one thread's worker process."""

    def __init__(self, thread_id: str, snapshot_path: Path | None, thread_dir: Path | None = None) -> None:
        self.thread_id = thread_id
        self.snapshot_path = snapshot_path
        # The thread's own directory (its snapshot, and `work/`, its work directory);
        # the one place a confined worker may always write.
        self.thread_dir = thread_dir or (snapshot_path.parent if snapshot_path else Path.cwd())
        self.work_dir = self.thread_dir / "work"
        self.policy: dict | None = None  # the sandbox policy it was started with (sandbox.py)
        self.signal_pid: int | None = None  # the worker itself (not bwrap) as we see it
        self.cgroup: str | None = None
        self.caller_model: dict | None = None  # the caller's model spec, key included
        self.send_lock = threading.Lock()  # requests and service replies share the pipe
        self.bridge: ServiceBridge | None = None  # made by the manager
        self.lock = threading.Lock()  # one request at a time per thread
        self.process: subprocess.Popen | None = None
        self.reader: EventReader | None = None
        self.lifeline: int | None = None
        self.started: str | None = None
        self.statements = 0
        self.blocks = 0
        self.restarts = 0
        self.busy = False
        self.cancel_requested = False
        # True from the worker's first event for the current request until its end: only
        # then may a cancel signal be sent, or it would hit the previous block's snapshot
        # (still being saved when the request was written) instead of this block.
        self.on_request = False
        self.cancel_lock = threading.Lock()
        self.discarded = False  # reset() or close(): never restart it

    def request_cancel(self) -> None:
        """Cancel the current request now if the worker is on it, else as soon as it is."""
        with self.cancel_lock:
            self.cancel_requested = True
            if self.on_request:
                self.signal(signal.SIGUSR1)

    def mark_on_request(self, on_request: bool) -> None:
        with self.cancel_lock:
            was = self.on_request
            self.on_request = on_request
            if on_request and not was and self.cancel_requested:
                self.signal(signal.SIGUSR1)  # a cancel that came before the worker started

    @property
    def pid(self) -> int | None:
        if self.process is None:
            return None
        return self.signal_pid or self.process.pid

    @property
    def confined(self) -> bool:
        return (self.policy or {}).get("mode") in ("workspace", "read-only")

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def send(self, request: dict, deadline: float | None = None) -> bool:
        """Write one request; False if the worker did not take it all before the deadline.

        A worker busy saving a snapshot reads its next request afterwards; a large block
        fills the pipe meanwhile, and a worker that never reads again (a runaway
        __reduce__) must not hang this call.
        """
        assert self.process is not None and self.process.stdin is not None
        line = json.dumps(request, ensure_ascii=False).encode("utf-8", "replace") + b"\n"
        with self.send_lock:
            return self._write(self.process.stdin.fileno(), line, deadline)

    @staticmethod
    def _write(fd: int, line: bytes, deadline: float | None) -> bool:
        view = memoryview(line)
        writable = select.poll()
        writable.register(fd, select.POLLOUT)
        while view:
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not writable.poll(int(remaining * 1000) + 1):
                    return False
            written = os.write(fd, view[:1 << 16])
            view = view[written:]
        return True

    def signal(self, signum: int) -> None:
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if signum == signal.SIGKILL:
                # The worker leads its own session: its children (a subprocess the code
                # started) go with it instead of lingering as orphans.
                os.killpg(self.process.pid, signum)
            else:
                os.kill(self.signal_pid or self.process.pid, signum)

    def kill(self) -> int | None:
        """Kill the process group, reap it, release the pipes; the exit status."""
        if self.process is None:
            return None
        returncode = kill_group(self.process)
        self.release()
        return returncode

    def retire(self, wait: float) -> None:
        """End an idle worker as close() does: end-of-file on its requests lets it finish the
        snapshot it may be writing; killed if it has not exited within `wait` seconds."""
        if self.process is not None and self.process.stdin is not None:
            with contextlib.suppress(OSError):
                self.process.stdin.close()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=wait)
        self.kill()

    def release(self) -> None:
        if self.process is not None:
            for stream in (self.process.stdin, self.process.stdout):
                with contextlib.suppress(OSError):
                    if stream is not None:
                        stream.close()
        if self.lifeline is not None:
            with contextlib.suppress(OSError):
                os.close(self.lifeline)
            self.lifeline = None
        if self.cgroup is not None and not self.alive():
            from llmtools.runtime.worker_processes import remove_cgroup

            remove_cgroup(self.cgroup)
            self.cgroup = None

    def memory_mb(self) -> float | None:
        if not self.alive():
            return None
        try:
            with open(f"/proc/{self.pid}/status") as status:
                for line in status:
                    if line.startswith("VmRSS:"):
                        return round(int(line.split()[1]) / 1024, 1)
        except (OSError, ValueError, IndexError):
            pass
        return None
