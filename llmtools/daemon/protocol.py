"""The daemon's wire protocol. Standard library only, so a thin client starts fast.

One request per connection, as one JSON line:

    {"v": 1, "cmd": "chat", "args": {...}, "code": {"version": ..., "root": ...}}

"code" (optional) is the client's code identity: the handshake travels with the request,
so a model call costs one round trip. A daemon running other code refuses the request
(error kind "OtherCode"); one running the same code answers {"event": "accepted"} first.

answered by a stream of JSON lines, each an object with an "event" key, ending with
exactly one of:

    {"event": "end", "result": <any JSON>}
    {"event": "error", "kind": "ProviderBusy", "message": "...", "status": 75,
     "traceback": "..."}           # traceback only when the daemon itself crashed

Events before the end are command-specific (for "chat": "text", "thinking", "usage",
"finished", "notice"), plus `{"event": "alive"}` every few seconds while a command runs
(`llmtools.daemon.emitter.HEARTBEAT_S`), so a client can bound each read. A connection that
closes before the end means the daemon died.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import socket

PROTOCOL_VERSION = 1
# A request may carry `"code": code_identity(...)`: a daemon running other code then refuses
# it with an OtherCode error, and one running this code answers ACCEPTED at once, before
# the command's work starts, so the client can bound its wait for a stopped daemon.
ACCEPTED = "accepted"
OTHER_CODE = "OtherCode"
SOCKET_NAME = "daemon.sock"
PID_NAME = "daemon.pid"
LOCK_NAME = "daemon.lock"
START_LOCK_NAME = "start.lock"
LOG_NAME = "daemon.log"
# sun_path is 108 bytes on Linux, including the terminating NUL.
MAX_SOCKET_PATH = 107


def code_identity(version: str) -> dict:
    """What code a daemon runs: a client from another checkout or version must not be
    served by it (it would answer with the old code until its idle timeout)."""
    from pathlib import Path

    return {"version": version, "root": str(Path(__file__).resolve().parents[1])}


class Writer(Protocol):
    """Where messages are sent: a socket file, a pipe, a BytesIO..."""

    def write(self, data: bytes, /) -> object: ...

    def flush(self) -> object: ...


class LineReader(Protocol):
    """Where messages are received from."""

    def readline(self) -> bytes: ...


class ProtocolError(Exception):
    """A line that is not a JSON object, or a connection that ended mid-line."""


def encode(message: dict) -> bytes:
    return json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n"


def send(stream: Writer, message: dict) -> None:
    stream.write(encode(message))
    stream.flush()


def receive(stream: LineReader) -> dict | None:
    """The next message, or None when the peer closed the connection cleanly."""
    line = stream.readline()
    if not line:
        return None
    if not line.endswith(b"\n"):
        raise ProtocolError("connection closed in the middle of a message")
    try:
        message = json.loads(line)
    except ValueError as error:
        raise ProtocolError(f"not JSON: {error}") from None
    if not isinstance(message, dict):
        raise ProtocolError("a message must be a JSON object")
    return message


def request(cmd: str, **args) -> dict:
    return {"v": PROTOCOL_VERSION, "cmd": cmd, "args": args}


def end(result=None) -> dict:
    return {"event": "end", "result": result}


def error(kind: str, message: str, status: int = 1, traceback: str | None = None) -> dict:
    reply = {"event": "error", "kind": kind, "message": message, "status": status}
    if traceback:
        reply["traceback"] = traceback
    return reply


def peer_credentials(connection: socket.socket) -> tuple[int, int, int]:
    """(pid, uid, gid) of the process at the other end of a Unix socket (Linux SO_PEERCRED)."""
    import socket  # the daemon's side only: a client does without the module (see client.Connection)
    import struct

    raw = connection.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, gid = struct.unpack("3i", raw)
    return pid, uid, gid
