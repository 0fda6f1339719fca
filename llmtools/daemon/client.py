"""Talking to the daemon: connect (starting it on demand), send one request, read events.

`DaemonClient.request()` never raises for what goes wrong on the daemon's side or on
the way there: every failure comes back as an error event (data), as dmypy's client
does, so callers choose how to react. `raise_for_error()` turns one into the matching
`LlmtoolsError` for callers that just want to fail with the right exit status.

Only `llmtools.services` uses this module for work, through `llmtools.daemon.remote`
(`reachable_client`, `chat_through`, `DaemonRuntimes`, `fetch_through`); it decides when
to fall back to doing the work in-process. `llm daemon ...` uses `DaemonClient` directly.
"""

from __future__ import annotations

import _socket
import contextlib
import fcntl
import json
import os
import select
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from llmtools import errors
from llmtools.daemon import protocol

START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0
# Every wait on the daemon is bounded. A running command sends a heartbeat every
# HEARTBEAT_S (2 s), so SILENCE_TIMEOUT_S without a single event means a daemon that is
# stopped (kill -STOP) or hung, not one that is busy. A ping should take milliseconds.
CONNECT_TIMEOUT_S = 5.0
SILENCE_TIMEOUT_S = 20.0
PING_TIMEOUT_S = 5.0

def runtime_dir() -> Path:
    from llmtools.statedirs import paths

    return paths().runtime_dir


def _error_event(kind: str, message: str, status: int) -> dict:
    return protocol.error(kind, message, status)


class Connection:
    """A connection to the daemon's socket, read line by line.

    Built on `_socket`, not `socket`: the `socket` module costs ~3 ms to import (it makes
    enums of every constant), which every model call handed to the daemon would pay, and a
    client needs none of it beyond connect, send, receive and a timeout."""

    def __init__(self, timeout: float) -> None:
        self.raw = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        self.raw.settimeout(timeout)
        self.buffer = bytearray()
        self.scanned = 0  # the buffer holds no newline before this offset

    def connect(self, path: str) -> None:
        self.raw.connect(path)

    def settimeout(self, timeout: float) -> None:
        self.raw.settimeout(timeout)

    def write(self, data: bytes) -> None:
        self.raw.sendall(data)

    def flush(self) -> None:
        """Nothing is buffered on the way out."""

    def readline(self) -> bytes:
        """The next line with its newline; what is left (maybe b"") when the daemon closed."""
        while True:
            end = self.buffer.find(b"\n", self.scanned)
            if end >= 0:
                line = bytes(self.buffer[:end + 1])
                del self.buffer[:end + 1]
                self.scanned = 0
                return line
            self.scanned = len(self.buffer)
            chunk = self.raw.recv(1 << 16)
            if not chunk:
                line = bytes(self.buffer)
                self.buffer.clear()
                self.scanned = 0
                return line
            self.buffer += chunk

    def close(self) -> None:
        self.raw.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class DaemonClient:
    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory or runtime_dir()
        self.socket_path = self.directory / protocol.SOCKET_NAME

    # --- connecting ---

    def _connect(self, timeout: float = CONNECT_TIMEOUT_S) -> Connection:
        """A connection to the socket; TimeoutError when a daemon's backlog stays full
        (it is not accepting: stopped or hung)."""
        deadline = time.monotonic() + timeout
        pause = 0.005
        while True:
            connection = Connection(timeout)
            try:
                connection.connect(str(self.socket_path))
                return connection
            except BlockingIOError:
                # A Unix socket with a timeout does not wait for room in a full backlog: it
                # says EAGAIN at once. Wait here instead, up to the deadline.
                connection.close()
                if time.monotonic() + pause > deadline:
                    raise TimeoutError(f"connecting to {self.socket_path}") from None
                time.sleep(pause)
                pause = min(pause * 2, 0.1)
            except OSError:
                connection.close()
                raise

    def not_answering(self, seconds: float) -> dict:
        pid = recorded_pid(self.directory)
        who = f"the daemon (pid {pid})" if pid else "the daemon"
        return _error_event("DaemonNotAnswering", f"{who} did not answer for {seconds:g}s (stopped or hung? "
                            "`llm daemon stop` ends it)", errors.ExitStatus.UNAVAILABLE)

    def answers(self, timeout: float = PING_TIMEOUT_S) -> str:
        """"yes" if a daemon answers a ping within `timeout`, "absent" if none listens,
        "silent" if one is there but does not answer (stopped or hung)."""
        for event in self.request("ping", silence=timeout, connect_timeout=timeout):
            if event["event"] == "end":
                return "yes"
            if event.get("kind") == "DaemonNotAnswering":
                return "silent"
        return "absent"

    def runs_our_code(self) -> bool:
        """Whether the running daemon (per its pid file) is this version from this checkout."""
        from llmtools import __version__

        try:
            recorded = json.loads((self.directory / protocol.PID_NAME).read_text())
        except (OSError, ValueError):
            return True  # nothing to compare with: a daemon that answers is trusted
        identity = protocol.code_identity(__version__)
        return all(recorded.get(key) == value for key, value in identity.items())

    def is_running(self) -> bool:
        return self.pid() is not None

    def pid(self) -> int | None:
        for event in self.request("ping", silence=PING_TIMEOUT_S, connect_timeout=PING_TIMEOUT_S):
            if event["event"] == "end":
                return event["result"]["pid"]
        return None

    def start(self) -> dict | None:
        """Start the daemon unless one answers; None on success, else an error event.

        A file lock serialises concurrent starters (20 commands launched at once start
        one daemon); the daemon reports readiness through a pipe, so there is no polling.
        """
        from llmtools.statedirs import ensure_private_dir

        ensure_private_dir(self.directory)
        with open(self.directory / protocol.START_LOCK_NAME, "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if self.is_running():
                return None
            import subprocess  # only a starting client pays for it

            read_end, write_end = os.pipe()
            log_path = self.directory / protocol.LOG_NAME
            from llmtools.launch import child_environment, python_command

            with open(log_path, "ab") as log_file:
                # Started from our own directory, never the caller's: nothing a user sees may
                # depend on where the command that happened to start the daemon ran.
                process = subprocess.Popen(
                    python_command("llmtools.daemon.server", "--ready-fd", str(write_end)),
                    stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file,
                    pass_fds=(write_end,), start_new_session=True, cwd=self.directory,
                    env=child_environment(),
                )
            os.close(write_end)
            try:
                word = _read_ready(read_end, START_TIMEOUT_S)
            finally:
                os.close(read_end)
            if word == "ready" or (word == "busy" and self.is_running()):
                return None
            with contextlib.suppress(ProcessLookupError):
                if process.poll() is None:
                    process.kill()
            detail = _last_log_line(log_path) or f"no answer within {START_TIMEOUT_S:g}s"
            return _error_event("ServiceUnavailable", f"the daemon did not start: {detail} "
                                f"(log: {log_path})", errors.ExitStatus.UNAVAILABLE)

    # --- one request ---

    def request(self, cmd: str, *, autostart: bool = False, silence: float = SILENCE_TIMEOUT_S,
                connect_timeout: float = CONNECT_TIMEOUT_S, same_code: bool = False, **args) -> Iterator[dict]:
        """Yield the daemon's events for one request; the last is always "end" or "error".

        No wait is unbounded: connecting gives up after `connect_timeout`, and `silence`
        seconds without any event (heartbeats included, which are not yielded) end the
        request with a DaemonNotAnswering error (exit 69).

        `same_code`: the request carries this code's identity, so the handshake is the
        request itself. A daemon running other code refuses it (OtherCode) before doing
        anything; with `autostart` it is then replaced and the request sent once more. A
        daemon that runs our code says "accepted" at once (not yielded), so one that has not
        within PING_TIMEOUT_S is stopped or hung. An error that means the request was never
        carried out is marked `"unserved": True`: the caller may do the work elsewhere.
        """
        for attempt in (1, 2):
            events = self._request_once(cmd, args, autostart=autostart, silence=silence,
                                        connect_timeout=connect_timeout, same_code=same_code)
            first = next(events)
            if first.get("kind") == protocol.OTHER_CODE and autostart and attempt == 1:
                replaced = self.replace_other_code()
                if replaced is None:
                    continue
                first = {**replaced, "unserved": True}
            yield first
            yield from events
            return

    def _request_once(self, cmd: str, args: dict, *, autostart: bool, silence: float, connect_timeout: float,
                      same_code: bool) -> Iterator[dict]:
        connection = self._open(autostart, connect_timeout)
        if isinstance(connection, dict):
            yield {**connection, "unserved": True}
            return
        message = protocol.request(cmd, **args)
        if same_code:
            from llmtools import __version__

            message["code"] = protocol.code_identity(__version__)
        accepted = not same_code
        connection.settimeout(silence if accepted else min(silence, PING_TIMEOUT_S))

        def unless_accepted(event: dict) -> dict:
            return event if accepted else {**event, "unserved": True}

        with connection as stream:
            try:
                protocol.send(stream, message)
                while True:
                    event = protocol.receive(stream)
                    if event is None:
                        yield unless_accepted(_error_event(
                            "ServiceUnavailable", "the daemon went away in the middle of the request "
                            "(the next command starts a fresh one)", errors.ExitStatus.UNAVAILABLE))
                        return
                    kind = event.get("event")
                    if kind == protocol.ACCEPTED:
                        accepted = True
                        connection.settimeout(silence)
                        continue
                    if kind == "alive":
                        continue
                    yield unless_accepted(event) if kind == "error" else event
                    if kind in ("end", "error"):
                        return
            except TimeoutError:
                yield unless_accepted(self.not_answering(silence if accepted else PING_TIMEOUT_S))
            except (protocol.ProtocolError, OSError) as problem:
                yield unless_accepted(_error_event("ServiceUnavailable", f"lost the daemon connection: {problem}",
                                                   errors.ExitStatus.UNAVAILABLE))

    def _open(self, autostart: bool, connect_timeout: float) -> Connection | dict:
        """A connection to the daemon (started first if none listens and `autostart`), or
        the error event that says why there is none."""
        try:
            return self._connect(connect_timeout)
        except TimeoutError:
            return self.not_answering(connect_timeout)
        except (FileNotFoundError, ConnectionRefusedError):
            if not autostart:
                return _error_event("ServiceUnavailable", "the daemon is not running", errors.ExitStatus.UNAVAILABLE)
            failure = self.start_or_error()
            if failure is not None:
                return failure
            try:
                return self._connect()
            except OSError as problem:
                return _error_event("ServiceUnavailable", f"cannot reach the daemon: {problem}",
                                    errors.ExitStatus.UNAVAILABLE)
        except OSError as problem:
            return _error_event("ServiceUnavailable", f"cannot reach the daemon at {self.socket_path}: "
                                f"{problem.strerror or problem}", errors.ExitStatus.UNAVAILABLE)

    def start_or_error(self) -> dict | None:
        """`start`, with any failure as an error event: None once a daemon answers."""
        try:
            return self.start()
        except (OSError, errors.LlmtoolsError) as problem:
            return _error_event("ServiceUnavailable", str(problem), errors.ExitStatus.UNAVAILABLE)

    def replace_other_code(self) -> dict | None:
        """Stop a daemon that runs other code (another version or checkout: it would answer
        with that code until its idle timeout); None once it is gone, else an error event."""
        try:
            self.stop()
        except (OSError, errors.LlmtoolsError) as problem:
            return _error_event("ServiceUnavailable", f"cannot replace a daemon running other code: {problem}",
                                errors.ExitStatus.UNAVAILABLE)
        return None

    def notify(self, cmd: str, **args) -> None:
        """Send a request and do not wait for its answer (the daemon carries it out anyway):
        for cleanup on the way out after a signal, which must never block."""
        with contextlib.suppress(OSError):
            with self._connect(timeout=1.0) as connection:
                connection.write(protocol.encode(protocol.request(cmd, **args)))

    def call(self, cmd: str, *, autostart: bool = False, silence: float = SILENCE_TIMEOUT_S, **args):
        """Run a command that has only a result; raise its error as an LlmtoolsError."""
        for event in self.request(cmd, autostart=autostart, silence=silence, **args):
            if event["event"] == "end":
                return event["result"]
            raise_for_error(event)
        raise errors.ServiceUnavailable("no reply from the daemon")

    def stop(self) -> int | None:
        """Ask the daemon to exit and wait until it has; return its pid, or None if none ran."""
        pid = None
        for event in self.request("stop", silence=PING_TIMEOUT_S):
            if event["event"] == "end":
                pid = event["result"]["pid"]
            elif event.get("kind") == "DaemonNotAnswering":
                pid = self._kill_silent_daemon()
        if pid is None:
            return None
        if not wait_for_exit(pid, STOP_TIMEOUT_S):
            raise errors.TemporaryFailure(f"daemon (pid {pid}) did not stop within {STOP_TIMEOUT_S:g}s")
        return pid


    def _kill_silent_daemon(self) -> int | None:
        """SIGKILL a daemon that does not answer (a stopped process acts on nothing else),
        after checking that the pid in its pid file is still our daemon."""
        import signal

        pid = recorded_pid(self.directory)
        if pid is None:
            return None
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                if b"llmtools.daemon.server" not in handle.read():
                    return None
            os.kill(pid, signal.SIGKILL)
        except OSError:
            return None
        return pid


def recorded_pid(directory: Path) -> int | None:
    """The pid the daemon wrote in its pid file, if any."""
    try:
        pid = json.loads((directory / protocol.PID_NAME).read_text()).get("pid")
    except (OSError, ValueError, AttributeError):
        return None
    return pid if isinstance(pid, int) else None


def raise_for_error(event: dict) -> None:
    if event.get("event") != "error":
        return
    if event.get("kind") == "DaemonCrash" and event.get("traceback") and os.environ.get("LLMTOOLS_DEBUG"):
        print(event["traceback"], file=sys.stderr)
    raise errors.error_from_json(event)


# --- helpers ------------------------------------------------------------------


def _read_ready(fd: int, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    data = b""
    while b"\n" not in data:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return ""
        readable, _, _ = select.select([fd], [], [], remaining)
        if not readable:
            return ""
        chunk = os.read(fd, 64)
        if not chunk:  # the daemon exited before it was ready
            break
        data += chunk
    return data.decode(errors="replace").strip()


def _last_log_line(path: Path) -> str | None:
    with contextlib.suppress(OSError):
        lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
        if lines:
            return lines[-1].strip()
    return None


def wait_for_exit(pid: int, timeout: float) -> bool:
    """Wait until process `pid` (not our child, so no waitpid) has exited; False on timeout."""
    from llmtools.launch import process_alive

    deadline = time.monotonic() + timeout
    while process_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


