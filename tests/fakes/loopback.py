"""What both fake provider servers share: scripted behaviours, recording, the HTTP plumbing.

A fake is a real HTTP/1.1 server on 127.0.0.1 (an ephemeral port) running in a background
thread, so the official SDKs talk to it over real sockets exactly as they would to the
real API. Each request takes the next behaviour from the script (a plain `Reply` once the
script is empty) and is recorded, with its headers, parsed JSON body and arrival time, for
the test to inspect.

Streams are sent with chunked transfer encoding, as the real APIs send them, so that a
connection closed part-way is an incomplete body to the client, not a short answer.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import os
import socket
import struct
import sys
import threading
import time
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# A held request (`SlowFirstByte`) is released at teardown; this bounds the wait in
# case a test never tears down, so no thread outlives the run by more than this.
HOLD_LIMIT_SECONDS = 10.0
# How long `stop()` waits for the serving thread before giving up on it.
STOP_LIMIT_SECONDS = 5.0


# --- behaviours a test can script ---------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Reply:
    """A complete streamed answer: optional thinking, then the text in `chunks` deltas."""

    text: str = "Hello from the fake server."
    thinking: str | None = None
    chunks: int = 3
    input_tokens: int = 11
    output_tokens: int = 7
    stop_reason: str | None = None  # None: the API's usual ("end_turn" / "stop")
    include_usage: bool = True  # False: an OpenAI-compatible server that sends no usage


@dataclasses.dataclass(frozen=True)
class HttpError:
    """An error status with the API's JSON error body; nothing is streamed."""

    status: int
    error_type: str
    message: str
    code: str | None = None
    headers: Mapping[str, str] = dataclasses.field(default_factory=dict)

    @classmethod
    def rate_limited(cls, retry_after: str | None = "0.2", *, retry_after_ms: str | None = None,
                     message: str = "Number of requests has exceeded your rate limit") -> HttpError:
        headers = {}
        if retry_after is not None:
            headers["retry-after"] = retry_after
        if retry_after_ms is not None:
            headers["retry-after-ms"] = retry_after_ms
        return cls(429, "rate_limit_error", message, code="rate_limit_exceeded", headers=headers)

    @classmethod
    def overloaded(cls, message: str = "Overloaded") -> HttpError:
        return cls(529, "overloaded_error", message)

    @classmethod
    def server_error(cls, status: int = 500, message: str = "Internal server error") -> HttpError:
        return cls(status, "api_error", message)

    @classmethod
    def unauthorized(cls, message: str = "invalid x-api-key") -> HttpError:
        return cls(401, "authentication_error", message, code="invalid_api_key")


@dataclasses.dataclass(frozen=True)
class CutMidStream:
    """Start the answer, send `text_before_cut`, then drop the connection without finishing.

    `reset=True` aborts with a TCP reset instead of an orderly close. `hold=True` keeps
    the connection open after the text until the server is released (a client stuck
    mid-answer, for Ctrl-C and SIGTERM tests).
    """

    text_before_cut: str = "The answer begins"
    chunks: int = 2
    reset: bool = False
    hold: bool = False


@dataclasses.dataclass(frozen=True)
class SlowFirstByte:
    """Send nothing at all until the test ends, so the client's read timeout fires."""


@dataclasses.dataclass(frozen=True)
class ErrorMidStream:
    """Start a 200 stream, optionally send some text, then an error in the stream itself."""

    error_type: str = "overloaded_error"
    message: str = "Overloaded"
    text_before_error: str = ""


Behaviour = Reply | HttpError | CutMidStream | SlowFirstByte | ErrorMidStream


def split_text(text: str, pieces: int) -> list[str]:
    """`text` in about `pieces` non-empty parts, in order."""
    if not text:
        return []
    pieces = max(1, min(pieces, len(text)))
    size = -(-len(text) // pieces)
    return [text[start:start + size] for start in range(0, len(text), size)]


# --- what was received ----------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    body: Any  # parsed JSON, or the raw text if it was not JSON
    received_at: float  # time.monotonic() once the whole request had arrived
    client_port: int  # the same port on two requests means a kept-alive connection was reused


# --- one request being answered ---------------------------------------------------------


class Exchange:
    """The response side of one request, in the terms the fakes need."""

    def __init__(self, handler: _Handler) -> None:
        self._handler = handler

    def send_json(self, status: int, payload: Any,
                  headers: Mapping[str, str] | None = None) -> None:
        body = json.dumps(payload).encode()
        handler = self._handler
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(body)
        handler.wfile.flush()

    def start_stream(self, content_type: str = "text/event-stream") -> None:
        handler = self._handler
        handler.send_response(200)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Cache-Control", "no-cache")
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        handler.wfile.flush()

    def send(self, text: str) -> None:
        """One chunk of the stream, flushed at once so the client sees it arrive."""
        data = text.encode()
        self._handler.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self._handler.wfile.flush()

    def end_stream(self) -> None:
        self._handler.wfile.write(b"0\r\n\r\n")
        self._handler.wfile.flush()

    def cut(self, *, reset: bool = False) -> None:
        """Drop the connection now, without the end of the body."""
        handler = self._handler
        handler.close_connection = True
        connection = handler.connection
        if reset:
            # Linger 0 makes closing the descriptor send a TCP RST. Closing it directly
            # (not the socket object, which the handler's file objects keep alive) does it
            # now and leaves those objects harmlessly pointing at a detached socket.
            connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            os.close(connection.detach())
        else:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def hold(self) -> None:
        """Answer nothing until the server is released (at teardown), then hang up."""
        self._handler.server.fake.released.wait(HOLD_LIMIT_SECONDS)
        self.cut()


# --- the server -------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the SDKs' connection pools expect
    # Each event is written as it is made, as real API servers do; with Nagle's algorithm on,
    # the second small write would wait for the client's delayed ACK (~40 ms on loopback).
    disable_nagle_algorithm = True
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        self.server.fake._track(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.fake._untrack(self.connection)

    def do_POST(self) -> None:
        self._handle()

    def do_GET(self) -> None:
        self._handle()

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        request = RecordedRequest(
            method=self.command,
            path=self.path,
            headers={name.lower(): value for name, value in self.headers.items()},
            body=body,
            received_at=time.monotonic(),
            client_port=self.client_address[1],
        )
        self.server.fake._answer(request, Exchange(self))

    def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
        pass


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    fake: LoopbackServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client hanging up (timeouts, abandoned streams, pools closing) is routine
        # here; anything else is a bug in the fake, kept for the fixture to report.
        error = sys.exc_info()[1]
        if not isinstance(error, OSError):
            self.fake.handler_errors.append(error)


class LoopbackServer:
    """Base of the fakes. Subclasses define `api_prefix`, `endpoint` and `respond`."""

    api_prefix = ""  # what the SDK's base_url includes after host:port
    endpoint = ""  # the path the SDK posts to

    def __init__(self) -> None:
        self._script: collections.deque[Behaviour] = collections.deque()
        self._requests: list[RecordedRequest] = []
        self._arrived = threading.Condition()
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        self.released = threading.Event()
        self.handler_errors: list[BaseException] = []
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- what tests use ---

    @property
    def base_url(self) -> str:
        assert self._httpd is not None, "the server is not running"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}{self.api_prefix}"

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, oldest first (a copy)."""
        with self._arrived:
            return list(self._requests)

    def script(self, *behaviours: Behaviour) -> None:
        """Queue behaviours, used one per request in order; then plain replies."""
        with self._arrived:
            self._script.extend(behaviours)

    def wait_for_requests(self, count: int, timeout: float = 5.0) -> list[RecordedRequest]:
        with self._arrived:
            if not self._arrived.wait_for(lambda: len(self._requests) >= count, timeout):
                raise AssertionError(f"expected {count} requests, got {len(self._requests)}")
            return list(self._requests)

    # --- lifecycle ---

    def start(self) -> LoopbackServer:
        self._httpd = _HTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.fake = self
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
            name=f"{type(self).__name__}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.released.set()
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        # Handler threads parked on a kept-alive connection would otherwise wait for the
        # client to hang up; shutting the sockets wakes them.
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(STOP_LIMIT_SECONDS)

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- for subclasses ---

    def respond(self, request: RecordedRequest, behaviour: Behaviour, exchange: Exchange) -> None:
        raise NotImplementedError

    def not_found(self, request: RecordedRequest, exchange: Exchange) -> None:
        exchange.send_json(404, {"error": {"message": f"no route {request.method} {request.path}"}})

    # --- internals ---

    def _answer(self, request: RecordedRequest, exchange: Exchange) -> None:
        with self._arrived:
            self._requests.append(request)
            self._arrived.notify_all()
            on_route = request.method == "POST" and request.path.split("?")[0] == self.endpoint
            behaviour = (self._script.popleft() if self._script else Reply()) if on_route else None
        if behaviour is None:
            self.not_found(request, exchange)
        else:
            self.respond(request, behaviour, exchange)

    def _track(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.add(connection)

    def _untrack(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.discard(connection)


def unused_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (it was free a moment ago)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
