"""Talking to the daemon: connect (starting it on demand), send one request, read events.

`DaemonClient.request()` never raises for what goes wrong on the daemon's side or on
the way there: every failure comes back as an error event (data), as dmypy's client
does, so callers choose how to react. `raise_for_error()` turns one into the matching
`LlmtoolsError` for callers that just want to fail with the right exit status.

Only `llmtools.services` uses this module for work (`reachable_client`, `chat_through`,
`DaemonRuntimes`, `fetch_through`); it decides when to fall back to doing the work
in-process. `llm daemon ...` uses `DaemonClient` directly.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import select
import socket
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

_warned_fallback = False


def runtime_dir() -> Path:
    from llmtools.statedirs import paths

    return paths().runtime_dir


def _error_event(kind: str, message: str, status: int) -> dict:
    return protocol.error(kind, message, status)


class DaemonClient:
    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory or runtime_dir()
        self.socket_path = self.directory / protocol.SOCKET_NAME

    # --- connecting ---

    def _connect(self, timeout: float = CONNECT_TIMEOUT_S) -> socket.socket:
        """A connection to the socket; TimeoutError when a daemon's backlog stays full
        (it is not accepting: stopped or hung)."""
        deadline = time.monotonic() + timeout
        pause = 0.005
        while True:
            connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            connection.settimeout(timeout)
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

    def _not_answering(self, seconds: float) -> dict:
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
                connect_timeout: float = CONNECT_TIMEOUT_S, **args) -> Iterator[dict]:
        """Yield the daemon's events for one request; the last is always "end" or "error".

        No wait is unbounded: connecting gives up after `connect_timeout`, and `silence`
        seconds without any event (heartbeats included, which are not yielded) end the
        request with a DaemonNotAnswering error (exit 69).
        """
        try:
            connection = self._connect(connect_timeout)
        except TimeoutError:
            yield self._not_answering(connect_timeout)
            return
        except (FileNotFoundError, ConnectionRefusedError):
            if not autostart:
                yield _error_event("ServiceUnavailable", "the daemon is not running",
                                   errors.ExitStatus.UNAVAILABLE)
                return
            failure = self.start()
            if failure is not None:
                yield failure
                return
            try:
                connection = self._connect()
            except OSError as problem:
                yield _error_event("ServiceUnavailable", f"cannot reach the daemon: {problem}",
                                   errors.ExitStatus.UNAVAILABLE)
                return
        except OSError as problem:
            yield _error_event("ServiceUnavailable", f"cannot reach the daemon at {self.socket_path}: "
                               f"{problem.strerror or problem}", errors.ExitStatus.UNAVAILABLE)
            return
        connection.settimeout(silence)
        with connection, connection.makefile("rwb") as stream:
            try:
                protocol.send(stream, protocol.request(cmd, **args))
                while True:
                    event = protocol.receive(stream)
                    if event is None:
                        yield _error_event(
                            "ServiceUnavailable", "the daemon went away in the middle of the request "
                            "(the next command starts a fresh one)", errors.ExitStatus.UNAVAILABLE)
                        return
                    if event.get("event") == "alive":
                        continue
                    yield event
                    if event.get("event") in ("end", "error"):
                        return
            except TimeoutError:
                yield self._not_answering(silence)
            except (protocol.ProtocolError, OSError) as problem:
                yield _error_event("ServiceUnavailable", f"lost the daemon connection: {problem}",
                                   errors.ExitStatus.UNAVAILABLE)

    def notify(self, cmd: str, **args) -> None:
        """Send a request and do not wait for its answer (the daemon carries it out anyway):
        for cleanup on the way out after a signal, which must never block."""
        with contextlib.suppress(OSError):
            with self._connect(timeout=1.0) as connection:
                connection.sendall(protocol.encode(protocol.request(cmd, **args)))

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


# --- what llmtools.services uses -------------------------------------------------------------


def _warn_fallback(failure: dict) -> None:
    global _warned_fallback
    if not _warned_fallback:
        from llmtools.notices import warn

        warn(f"{failure.get('message')}; working without it")
        _warned_fallback = True


def reachable_client() -> DaemonClient | None:
    """A client of a daemon running this code, started if none runs; None (with one warning)
    when none can be had, so the caller works in-process instead."""
    client = DaemonClient()
    try:
        state = client.answers()
        if state == "silent":  # kill -STOP, or hung: do the work here rather than wait
            _warn_fallback(client._not_answering(PING_TIMEOUT_S))
            return None
        if state == "yes":
            if client.runs_our_code():
                return client
            client.stop()  # another version or checkout: replace it with one running this code
    except OSError:
        pass
    except errors.LlmtoolsError as problem:
        _warn_fallback(_error_event("ServiceUnavailable", str(problem), errors.ExitStatus.UNAVAILABLE))
        return None
    try:
        failure = client.start()
    except (OSError, errors.LlmtoolsError) as problem:
        failure = _error_event("ServiceUnavailable", str(problem), errors.ExitStatus.UNAVAILABLE)
    if failure is not None:
        _warn_fallback(failure)
        return None
    return client


def chat_through(client: DaemonClient, spec, request) -> Iterator:
    """Provider events for one model call made by the daemon."""
    from llmtools.providers.base import event_from_json

    fields = dataclasses.asdict(spec)
    for event in client.request("chat", autostart=True, spec=fields, request=vars(request)):
        kind = event["event"]
        provider_event = event_from_json(event)
        if provider_event is not None:
            yield provider_event
        elif kind == "notice":
            show_notice(event)
        elif kind == "error":
            raise_for_error(event)
        elif kind == "end":
            return


def show_notice(event: dict) -> None:
    """A notice the daemon sent on: told here as if it had happened here."""
    from llmtools import notices

    notices.tell(event.get("level") or "note", event["text"])


class DaemonRuntimes:
    """The daemon's RuntimeManager, seen from a client: same methods, same results."""

    def __init__(self, client: DaemonClient) -> None:
        self.client = client

    def execute(self, thread_id: str, code: str, *, timeout: float, memory_mb: int | None = None,
                context: dict | None = None, sandbox: dict | None = None) -> dict:
        return self.client.call("runtime_execute", autostart=True, thread=thread_id, code=code,
                                timeout=timeout, memory_mb=memory_mb, context=context, sandbox=sandbox)

    def evaluate(self, thread_id: str, expression: str, *, timeout: float,
                 sandbox: dict | None = None) -> dict:
        return self.client.call("runtime_evaluate", autostart=True, thread=thread_id,
                                expression=expression, timeout=timeout, sandbox=sandbox)

    def reset(self, thread_id: str) -> dict:
        return self.client.call("runtime_reset", autostart=True, thread=thread_id)

    def discard(self, thread_id: str) -> None:
        """Reset without waiting: how a throwaway thread goes after SIGTERM or Ctrl-C."""
        self.client.notify("runtime_reset", thread=thread_id)

    def interrupt(self, thread_id: str) -> dict:
        return self.client.call("runtime_interrupt", thread=thread_id)

    def threads(self) -> list[dict]:
        return self.client.call("runtime_threads", autostart=True)

    def close(self) -> None:
        """The runtimes belong to the daemon; a client has nothing to close."""


def fetch_through(client: DaemonClient, urls: list[str], *, timeout: float, wait_for: str | None = None,
                  cookies_file: str | None = None, screenshot: bool = False, tool: str = "llm-fetch"):
    """FetchResults from the daemon's warm browser, one per URL as each completes."""
    from llmtools.content.fetch import FetchResult

    for event in client.request("fetch", autostart=True, urls=urls, timeout=timeout,
                                wait_for=wait_for, screenshot=screenshot, tool=tool,
                                cookies_file=os.path.abspath(cookies_file) if cookies_file else None):
        kind = event["event"]
        if kind == "result":
            failure = event.get("error")
            if failure is None:
                yield FetchResult(event["url"], message=event["message"])
                continue
            yield FetchResult(event["url"], error=errors.error_from_json({"event": "error", **failure}))
        elif kind == "notice":
            show_notice(event)
        elif kind == "error":
            raise_for_error(event)


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


