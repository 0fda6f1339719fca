"""The per-user daemon: holds what is slow to start and serves it over a Unix socket.

It keeps provider clients warm (the anthropic SDK alone takes ~1.5 s to import), local
models loaded, the Python runtimes `llm-exec` programs (each in its own worker
process) and the headless browser `llm-fetch` uses.

Safety: the socket lives in a 0700 directory of ours, is itself 0600, and every
connection's peer uid is checked (SO_PEERCRED) against our own. One daemon per user
is guaranteed by an flock held for the daemon's lifetime; whoever holds it owns the
socket path, so a socket file left by a killed daemon is simply replaced.

Commands are methods named `cmd_<name>(args, emit)`: `emit` streams events to the
client, the return value is the final result. An exception becomes an error reply;
an unexpected one carries its traceback to the client, and the daemon keeps serving.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import signal
import socketserver
import sys
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from llmtools import __version__
from llmtools.daemon import protocol
from llmtools.daemon.emitter import Emitter
from llmtools.errors import ExitStatus, LlmtoolsError, UsageError

if TYPE_CHECKING:  # imported when first used: the daemon starts without them
    from llmtools.content.browser import Browser
    from llmtools.providers.base import Provider
    from llmtools.runtime.manager import RuntimeManager
    from llmtools.runtime.results import EvaluateResult, ExecuteResult


DEFAULT_IDLE_TIMEOUT = 30 * 60.0

Emit = Callable[[dict], None]  # in practice an Emitter, which can also watch for hang-ups


def log(message: str) -> None:
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    print(f"{stamp} [{os.getpid()}] {message}", file=sys.stderr, flush=True)


def _provider_key(spec_fields: dict) -> str:
    """Warm providers are shared by requests whose settings are the same (as far as the
    provider says they matter: `Provider.warm_key_ignores`).

    The key holds a hash of the API key, never the key, since keys end up in debug output.
    """
    from llmtools.providers import provider_class

    fields = dict(spec_fields)
    for name in provider_class(fields["provider"]).warm_key_ignores:
        fields.pop(name, None)
    key = fields.pop("api_key", None)
    fields["api_key_sha256"] = hashlib.sha256(key.encode()).hexdigest() if key else None
    return json.dumps(fields, sort_keys=True, default=str)


class Daemon:
    def __init__(self, runtime_dir: Path, idle_timeout: float = DEFAULT_IDLE_TIMEOUT) -> None:
        self.runtime_dir = runtime_dir
        self.socket_path = runtime_dir / protocol.SOCKET_NAME
        self.idle_timeout = idle_timeout
        self.started = time.time()
        self.identity = protocol.code_identity(__version__)
        self.requests_served = 0
        self._providers: dict[str, Provider] = {}
        self._providers_lock = threading.Lock()
        self._runtimes: RuntimeManager | None = None
        self._runtimes_lock = threading.Lock()
        self._browser: Browser | None = None
        self._browser_lock = threading.Lock()
        self._active = 0
        self._last_activity = time.monotonic()
        self._activity_lock = threading.Lock()
        self.stopping = threading.Event()
        self.server: socketserver.BaseServer | None = None

    # --- bookkeeping ---

    @contextlib.contextmanager
    def activity(self):
        with self._activity_lock:
            self._active += 1
            self.requests_served += 1
        try:
            yield
        finally:
            with self._activity_lock:
                self._active -= 1
                self._last_activity = time.monotonic()

    def idle_for(self) -> float:
        with self._activity_lock:
            return 0.0 if self._active else time.monotonic() - self._last_activity

    def stop(self, reason: str) -> None:
        if self.stopping.is_set():
            return
        self.stopping.set()
        log(f"stopping: {reason}")
        if self.server is not None:
            # shutdown() waits for serve_forever to return, so never call it from that thread.
            threading.Thread(target=self.server.shutdown, daemon=True).start()

    def watch_idle(self) -> None:
        if self.idle_timeout <= 0:
            return
        while not self.stopping.wait(min(self.idle_timeout, 5.0)):
            if self.idle_for() >= self.idle_timeout:
                self.stop(f"idle for {self.idle_timeout:g}s")

    def close_resources(self) -> None:
        with self._providers_lock:
            providers, self._providers = list(self._providers.values()), {}
        for provider in providers:
            with contextlib.suppress(Exception):
                provider.close()
        if self._runtimes is not None:
            with contextlib.suppress(Exception):
                self._runtimes.close()
        if self._browser is not None:
            with contextlib.suppress(Exception):
                self._browser.close()

    # --- warm resources ---

    def provider_for(self, spec_fields: dict) -> Provider:
        from llmtools.providers import load_provider
        from llmtools.providers.base import ModelSpec

        key = _provider_key(spec_fields)
        with self._providers_lock:
            provider = self._providers.get(key)
            if provider is None:
                provider = load_provider(ModelSpec(**spec_fields))
                self._providers[key] = provider
        return provider

    @property
    def runtimes(self) -> RuntimeManager:
        with self._runtimes_lock:
            if self._runtimes is None:
                from llmtools.runtime.manager import RuntimeManager

                self._runtimes = RuntimeManager()
            return self._runtimes

    @property
    def browser(self) -> Browser:
        with self._browser_lock:
            if self._browser is None:
                from llmtools.content.browser import Browser

                self._browser = Browser()
            return self._browser

    # --- commands ---

    def cmd_ping(self, args: dict, emit: Emit) -> dict:
        return {"pid": os.getpid(), "version": __version__}

    def cmd_status(self, args: dict, emit: Emit) -> dict:
        with self._providers_lock:
            providers = sorted({provider.spec.name for provider in self._providers.values()})
            # Local models run in worker processes of their own (a crash there is one failed
            # request); their pids let a user see, or kill, what holds the memory.
            pids = [(provider.spec.name, provider.worker_pid) for provider in self._providers.values()]
            model_workers = [{"model": name, "pid": pid}
                             for name, pid in sorted((name, pid) for name, pid in pids if pid is not None)]
        runtimes = self._runtimes.threads() if self._runtimes is not None else []
        return {
            "pid": os.getpid(),
            "version": __version__,
            "socket": str(self.socket_path),
            "uptime_s": round(time.time() - self.started, 1),
            "idle_s": round(self.idle_for(), 1),
            "idle_timeout_s": self.idle_timeout,
            "requests_served": self.requests_served,
            "warm_models": providers,
            "model_workers": model_workers,
            "runtimes": runtimes,
            "browser": self._browser is not None and self._browser.launched,
        }

    def cmd_stop(self, args: dict, emit: Emit) -> dict:
        self.stop("asked to stop")
        return {"pid": os.getpid()}

    def cmd_chat(self, args: dict, emit: Emit) -> None:
        from llmtools.providers.base import Request, event_to_json
        from llmtools.providers.retry import stream_with_retries

        provider = self.provider_for(args["spec"])
        request = Request(**args["request"])
        with contextlib.closing(stream_with_retries(provider, request)) as events:
            for event in events:
                emit(event_to_json(event))

    def cmd_fetch(self, args: dict, emit: Emit) -> None:
        """Fetch URLs in the warm browser; one "result" event per URL, as each completes."""
        from llmtools.content.cookies import load_cookies_txt
        from llmtools.content.fetch import fetch_each
        from llmtools.errors import error_to_json

        cookies = load_cookies_txt(args["cookies_file"]) if args.get("cookies_file") else None
        results = fetch_each(args["urls"], browser=self.browser, timeout=args["timeout"],
                             wait_for=args.get("wait_for"), cookies=cookies,
                             screenshot=args.get("screenshot", False),
                             tool=args.get("tool", "llm-fetch"))
        with contextlib.closing(results):
            for result in results:
                event: dict = {"event": "result", "url": result.url}
                if result.error is not None:
                    event["error"] = {key: value for key, value in error_to_json(result.error).items()
                                      if key != "event"}
                else:
                    event["message"] = result.message
                emit(event)

    def cmd_runtime_execute(self, args: dict, emit: Emitter) -> ExecuteResult:
        thread = args["thread"]
        # A client that goes away mid-block (Ctrl-C in llm-exec) stops the block, as
        # Ctrl-C does in-process; the thread's variables stay.
        with emit.on_disconnect(lambda: self.runtimes.interrupt(thread)):
            return self.runtimes.execute(thread, args["code"], timeout=args["timeout"],
                                         memory_mb=args.get("memory_mb"), context=args.get("context"),
                                         sandbox=args.get("sandbox"))

    def cmd_runtime_interrupt(self, args: dict, emit: Emit) -> dict:
        return self.runtimes.interrupt(args["thread"])

    def cmd_runtime_evaluate(self, args: dict, emit: Emit) -> EvaluateResult:
        return self.runtimes.evaluate(args["thread"], args["expression"], timeout=args["timeout"],
                                      sandbox=args.get("sandbox"), keep_policy=bool(args.get("keep_policy")))

    def cmd_runtime_reset(self, args: dict, emit: Emit) -> dict:
        return self.runtimes.reset(args["thread"])

    def cmd_runtime_threads(self, args: dict, emit: Emit) -> list:
        return self.runtimes.threads()


class _Handler(socketserver.StreamRequestHandler):
    server: _Server

    def handle(self) -> None:
        daemon = self.server.daemon
        _, uid, _ = protocol.peer_credentials(self.connection)
        if uid != os.getuid():
            log(f"refused a connection from uid {uid}")
            self._reply(protocol.error("PermissionDenied", f"this daemon serves uid {os.getuid()} only",
                                       ExitStatus.UNAVAILABLE))
            return
        try:
            message = protocol.receive(self.rfile)
        except protocol.ProtocolError as problem:
            self._reply(protocol.error("ProtocolError", str(problem), ExitStatus.DATA_ERROR))
            return
        if message is None:
            return
        command = message.get("cmd")
        method = getattr(daemon, f"cmd_{command}", None) if isinstance(command, str) else None
        if message.get("v") != protocol.PROTOCOL_VERSION or method is None:
            self._reply(protocol.error("ProtocolError", f"unrecognized command {command!r} "
                                       f"(protocol v{message.get('v')}, daemon v{protocol.PROTOCOL_VERSION})",
                                       ExitStatus.UNAVAILABLE))
            return
        code = message.get("code")
        if code is not None and code != daemon.identity:
            self._reply(protocol.error(protocol.OTHER_CODE, f"this daemon runs other code ({daemon.identity}; "
                                       f"the request is from {code})", ExitStatus.UNAVAILABLE))
            return
        from llmtools.notices import notices_to

        emit = Emitter(self.connection, self.wfile)
        # Warnings and notes raised while serving (a prompt cut to fit, a retry, a page that
        # fell back to plain HTTP) are the client's to see, not the daemon log's.
        forward = lambda level, text: emit({"event": "notice", "level": level, "text": text})  # noqa: E731
        with daemon.activity(), notices_to(forward):
            try:
                if code is not None:
                    # Said before any work: a client that gave up waiting (we were stopped)
                    # has hung up, so this fails and the work is not done behind its back.
                    emit({"event": protocol.ACCEPTED})
                with emit.heartbeat():  # so that a client can tell busy from hung
                    result = method(message.get("args") or {}, emit)
                emit(protocol.end(result))
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client went away (Ctrl-C, `| head`); nothing to tell it
            except LlmtoolsError as problem:
                self._reply(protocol.error(type(problem).__name__, str(problem), int(problem.status)))
            except Exception as problem:
                details = traceback.format_exc()
                log(f"crash in {command}: {details}")
                self._reply(protocol.error("DaemonCrash", f"daemon crashed running {command}: "
                                           f"{type(problem).__name__}: {problem}", ExitStatus.FAILURE,
                                           details))

    def _reply(self, event: dict) -> None:
        with contextlib.suppress(OSError):
            protocol.send(self.wfile, event)


class _Server(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True
    request_queue_size = 128  # many commands at once (xargs -P, llm-map) connect without waiting
    allow_reuse_address = False
    daemon: Daemon


def _bind_private(path: Path) -> _Server:
    if len(os.fsencode(path)) > protocol.MAX_SOCKET_PATH:
        raise UsageError(f"socket path too long for a Unix socket: {path} (set LLMTOOLS_HOME shorter)")
    previous = os.umask(0o177)  # no window in which the socket is reachable by others
    try:
        server = _Server(str(path), _Handler)
    finally:
        os.umask(previous)
    os.chmod(path, 0o600)
    return server


def acquire_lock(runtime_dir: Path):
    """The lifetime lock: returns the open file holding it, or None if a daemon has it."""
    handle = open(runtime_dir / protocol.LOCK_NAME, "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


def serve(runtime_dir: Path, idle_timeout: float, ready_fd: int | None = None) -> int:
    from llmtools.statedirs import ensure_private_dir

    ensure_private_dir(runtime_dir)
    lock = acquire_lock(runtime_dir)
    if lock is None:
        log("another daemon is already running")
        _signal_ready(ready_fd, "busy")
        return ExitStatus.FAILURE
    daemon = Daemon(runtime_dir, idle_timeout)
    pid_path = runtime_dir / protocol.PID_NAME
    # We hold the lock, so any socket file here belongs to a daemon that died: replace it.
    with contextlib.suppress(FileNotFoundError):
        daemon.socket_path.unlink()
    server = _bind_private(daemon.socket_path)
    server.daemon = daemon
    daemon.server = server
    pid_path.write_text(json.dumps({"pid": os.getpid(), "socket": str(daemon.socket_path),
                                    "started": daemon.started, **daemon.identity}))
    signal.signal(signal.SIGTERM, lambda *_: daemon.stop("SIGTERM"))
    signal.signal(signal.SIGINT, lambda *_: daemon.stop("SIGINT"))
    threading.Thread(target=daemon.watch_idle, name="idle-watch", daemon=True).start()
    log(f"listening on {daemon.socket_path} (idle timeout {idle_timeout:g}s)")
    _signal_ready(ready_fd, "ready")
    try:
        server.serve_forever(poll_interval=0.5)
    finally:
        server.server_close()
        for path in (daemon.socket_path, pid_path):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        daemon.close_resources()
        lock.close()
        log("stopped")
    return ExitStatus.OK


def _signal_ready(ready_fd: int | None, word: str) -> None:
    """Tell the client that started us that the socket is listening (no polling needed)."""
    if ready_fd is None:
        return
    with contextlib.suppress(OSError):
        os.write(ready_fd, word.encode() + b"\n")
        os.close(ready_fd)


def idle_timeout_setting() -> float:
    from llmtools import config

    return config.setting("daemon_idle_timeout", DEFAULT_IDLE_TIMEOUT, env="LLMTOOLS_DAEMON_IDLE_TIMEOUT")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="llmtools-daemon", description="Run the llmtools daemon.")
    parser.add_argument("--ready-fd", type=int, help="write 'ready' to this fd once listening")
    parser.add_argument("--idle-timeout", type=float, help="exit after this many idle seconds (0: never)")
    options = parser.parse_args(argv)
    from llmtools.statedirs import paths

    idle = options.idle_timeout if options.idle_timeout is not None else idle_timeout_setting()
    return serve(paths().runtime_dir, idle, options.ready_fd)


if __name__ == "__main__":
    sys.exit(main())
