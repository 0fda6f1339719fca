"""Our own Python child processes (the daemon, model workers, runtime workers): starting
them, reading the JSON-line events they write, and saying how one ended.

Every child runs this same llmtools, and never code from wherever the user happens to
be: `-P` keeps the working directory off `sys.path` (a `llmtools/` folder where a command
runs would otherwise shadow the installed package), and this package's root comes first on
PYTHONPATH so a checkout's `bin/` shims start children from the same checkout.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

PACKAGE_ROOT = str(Path(__file__).resolve().parents[1])


def python_command(module: str, *args: str) -> list[str]:
    """The command line that runs `python -m module args...` in isolation from the cwd."""
    return [sys.executable, "-P", "-m", module, *args]


def kill_group(process: subprocess.Popen) -> int | None:
    """SIGKILL a child that leads its own session, with whatever it started (no orphans
    left running), reap it and close our ends of its pipes; its exit status, or None if it
    could not be reaped (stuck in the kernel)."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
    try:
        returncode = process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        returncode = None
    for stream in (process.stdin, process.stdout):
        with contextlib.suppress(OSError):
            if stream is not None:
                stream.close()
    return returncode


def child_environment() -> dict[str, str]:
    """Our environment, with this package's root first on PYTHONPATH."""
    env = dict(os.environ)
    existing = env.get("PYTHONPATH")
    env["PYTHONPATH"] = PACKAGE_ROOT + (os.pathsep + existing if existing else "")
    return env


# What EventReader.next() returns instead of an event.
TIMEOUT = object()
EOF = object()
WOKEN = object()  # a signal arrived (see SignalLatch)


def process_alive(pid: int) -> bool:
    """Whether process `pid` still runs. A zombie (exited, not yet reaped by its parent) does
    not: for the daemon's stop and the log's dead writers, it has ended."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's: it exists
    with contextlib.suppress(OSError, IndexError):
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return not stat.read().rsplit(b") ", 1)[1].startswith(b"Z")
    return True


def describe_exit(returncode: int | None) -> str:
    if returncode is None:
        return "stopped responding"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"was killed by {name}"
    return f"exited with status {returncode}"


class EventReader:
    """JSON lines from a worker's stdout, each read waiting at most until a deadline
    (None: as long as it takes; a crash still ends the wait, as EOF)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buffer = bytearray()
        # poll, not select: a daemon with many threads may hold descriptors above 1024.
        self.poller = select.poll()
        self.poller.register(fd, select.POLLIN)

    def next(self, deadline: float | None, wake_fd: int | None = None):
        """The next event; TIMEOUT at the deadline, EOF when the worker is gone, WOKEN
        when `wake_fd` became readable first (a signal, see SignalLatch)."""
        if wake_fd is not None:
            self.poller.register(wake_fd, select.POLLIN)
        try:
            return self._next(deadline, wake_fd)
        finally:
            if wake_fd is not None:
                self.poller.unregister(wake_fd)

    def _next(self, deadline: float | None, wake_fd: int | None):
        while True:
            newline = self.buffer.find(b"\n")
            if newline >= 0:
                line = bytes(self.buffer[:newline])
                del self.buffer[:newline + 1]
                try:
                    return json.loads(line)
                except ValueError:
                    return {"event": "fatal", "message": f"unreadable event: {line[:200]!r}"}
            wait_ms = None
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return TIMEOUT
                wait_ms = int(remaining * 1000) + 1
            ready = self.poller.poll(wait_ms)
            if not ready:
                continue  # loop to re-check the deadline
            if wake_fd is not None and any(fd == wake_fd for fd, _ in ready):
                return WOKEN
            try:
                chunk = os.read(self.fd, 1 << 16)
            except OSError:  # closed under us by reset() or close()
                return EOF
            if not chunk:
                return EOF
            self.buffer += chunk
