"""Service calls over a worker's channel: how model-written code reaches models and the network.

Inside a runtime worker, every public function of `llmtools.services` (chat_stream, fetch,
and whatever services are added there later) is replaced by a stub that sends the call to
the parent process, the one that runs the RuntimeManager (the daemon, or llm-exec itself),
over the worker's existing pipes. The parent runs the real service, which holds the keys
and the network, and sends the answer back. So helpers written against `llmtools.services`
work the same whether the worker is sandboxed (no network, no keys) or not: there is one
path. Log rows the worker's model calls write (`llmtools.logs.open_log`) go the same way.

    <- {"event": "service", "id": n, "name": "fetch", "args": [...], "kwargs": {...}}
    -> {"op": "service_reply", "id": n, "kind": "value" | "error" | "stream" | "item"
        | "end" | "callable", "data": base64 pickle}
    <- {"event": "service_cancel", "id": n}          the worker stopped reading a stream

Trust runs one way. What the parent sends is pickled (the worker trusts its parent);
what the worker sends is JSON whose only objects are dataclasses of this package
(ModelSpec, Request), rebuilt field by field, so nothing the code sends can run code in
the parent. `llmtools.runtime.bridge` decides what the parent agrees to do.
"""

from __future__ import annotations

import base64
import dataclasses
import itertools
import json
import pickle
import queue
import signal
import threading
from collections.abc import Callable
from typing import Any

# Services that make no sense from inside a worker (the runtimes themselves, the daemon's
# controls): never forwarded, and refused if asked for.
LOCAL_ONLY = frozenset({"runtimes", "daemon_control", "daemon_disabled", "batches"})
# Services built on the forwarded ones, which run in the worker as they are: `chat_streams`
# is a context manager over `chat_stream` (forwarded, so each call still crosses); an
# offline `embedder` (BM25, hashed vectors) is pure computation on text the code has.
COMPOSED_IN_WORKER = frozenset({"chat_streams", "embedder"})


# --- encoding: worker -> parent is tagged JSON, parent -> worker is pickle ---------------------


def encode(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        cls = type(value)
        return {"__dataclass__": f"{cls.__module__}:{cls.__qualname__}",
                "fields": {field.name: encode(getattr(value, field.name))
                           for field in dataclasses.fields(value)}}
    if isinstance(value, (bytes, bytearray)):
        return {"__bytes__": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, tuple):
        return {"__tuple__": [encode(item) for item in value]}
    if isinstance(value, list):
        return [encode(item) for item in value]
    if isinstance(value, dict):
        if all(isinstance(key, str) for key in value):
            return {"__dict__": {key: encode(item) for key, item in value.items()}}
        raise TypeError("a service argument dict must have string keys")
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, type) and value in (str, int, float, bool, dict, list):
        return {"__type__": value.__name__}
    raise TypeError(f"a {type(value).__name__} cannot be sent to a service from a runtime")


def decode(value: Any) -> Any:
    """The parent's side: rebuild what `encode` made, trusting nothing in it."""
    import builtins
    import importlib

    if isinstance(value, list):
        return [decode(item) for item in value]
    if not isinstance(value, dict):
        return value
    if "__bytes__" in value:
        return base64.b64decode(value["__bytes__"])
    if "__tuple__" in value:
        return tuple(decode(item) for item in value["__tuple__"])
    if "__dict__" in value:
        return {str(key): decode(item) for key, item in value["__dict__"].items()}
    if "__type__" in value:
        name = str(value["__type__"])
        if name not in ("str", "int", "float", "bool", "dict", "list"):
            raise ValueError(f"type {name!r} cannot be sent")
        return getattr(builtins, name)
    if "__dataclass__" in value:
        module_name, _, qualname = str(value["__dataclass__"]).partition(":")
        if not module_name.startswith("llmtools.") or "." in qualname:
            raise ValueError(f"{value['__dataclass__']!r} cannot be sent")
        cls = getattr(importlib.import_module(module_name), qualname, None)
        if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
            raise ValueError(f"{value['__dataclass__']!r} is not a dataclass")
        fields = {field.name for field in dataclasses.fields(cls)}
        return cls(**{key: decode(item) for key, item in value["fields"].items() if key in fields})
    raise ValueError("an untagged object cannot be sent")


def pack(value: Any) -> str:
    return base64.b64encode(pickle.dumps(value)).decode()


def unpack(data: str) -> Any:
    return pickle.loads(base64.b64decode(data))


# --- the worker's side ---------------------------------------------------------------------------


class ServiceError(Exception):
    """A service failed in the parent with an error that could not be sent as itself."""


class Channel:
    """The worker's pipes, shared by the request loop and any number of service calls.

    A reader thread takes every line from the parent: requests go to the main loop
    (`next_request`), replies to the call waiting for them (calls may come from several
    threads of the user's code at once, as a map over a list of chunks does).
    """

    def __init__(self, protocol_in, write_event: Callable[[dict], None]) -> None:
        self.protocol_in = protocol_in
        self.write_event = write_event
        self.requests: queue.Queue[bytes | None] = queue.Queue()
        self.pending: dict[int, queue.Queue[dict | None]] = {}
        self.lock = threading.Lock()
        self.ids = itertools.count(1)
        threading.Thread(target=self._read, name="channel", daemon=True).start()

    def _read(self) -> None:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGUSR1, signal.SIGTERM})
        while True:
            line = self.protocol_in.readline()
            if not line:
                break
            try:
                message = json.loads(line) if b'"service_reply"' in line else None
            except ValueError:
                message = None
            if isinstance(message, dict) and message.get("op") == "service_reply":
                with self.lock:
                    waiting = self.pending.get(message.get("id"))  # type: ignore[arg-type]
                if waiting is not None:
                    waiting.put(message)
                continue
            self.requests.put(line)
        self.requests.put(None)
        with self.lock:
            for waiting in self.pending.values():
                waiting.put(None)

    def next_request(self) -> bytes | None:
        return self.requests.get()

    def _open(self) -> tuple[int, queue.Queue[dict | None]]:
        call_id = next(self.ids)
        replies: queue.Queue[dict | None] = queue.Queue()
        with self.lock:
            self.pending[call_id] = replies
        return call_id, replies

    def _close(self, call_id: int, *, cancel: bool) -> None:
        with self.lock:
            self.pending.pop(call_id, None)
        if cancel:
            self.write_event({"event": "service_cancel", "id": call_id})

    def call(self, name: str, args: tuple, kwargs: dict) -> Any:
        call_id, replies = self._open()
        try:
            self.write_event({"event": "service", "id": call_id, "name": name,
                              "args": encode(list(args)), "kwargs": encode(dict(kwargs))})
            reply = self._reply(replies)
        except BaseException:
            # Interrupted (a timeout's KeyboardInterrupt), or failed: the parent may stop.
            self._close(call_id, cancel=True)
            raise
        if reply.get("kind") == "stream":
            return self._stream(call_id, replies)  # it owns the call from here
        self._close(call_id, cancel=False)
        if reply.get("kind") == "callable":
            return _CallableResult(self, name, args, kwargs)
        return unpack(reply["data"])

    @staticmethod
    def _reply(replies: queue.Queue[dict | None]) -> dict:
        reply = replies.get()
        if reply is None:
            raise ServiceError("the runtime's parent process went away during a service call")
        if reply.get("kind") == "error":
            raise _error_from(reply)
        return reply

    def _stream(self, call_id: int, replies: queue.Queue[dict | None]):
        done = False
        try:
            while True:
                reply = self._reply(replies)
                if reply.get("kind") == "end":
                    done = True
                    return
                yield unpack(reply["data"])
        finally:
            self._close(call_id, cancel=not done)


def _error_from(reply: dict) -> BaseException:
    try:
        error = unpack(reply["data"])
        if isinstance(error, BaseException):
            return error
    except Exception:  # noqa: BLE001 - an error that does not unpickle is described instead
        pass
    return ServiceError(str(reply.get("message") or "a service call failed"))


class _CallableResult:
    """What a service returned that is itself to be called (chat_stream's stream factory)."""

    def __init__(self, channel: Channel, name: str, args: tuple, kwargs: dict) -> None:
        self.channel, self.name, self.args, self.kwargs = channel, name, args, kwargs

    def __call__(self, *args, **kwargs):
        return self.channel.call(f"{self.name}()", (list(self.args), self.kwargs, *args), kwargs)


class ForwardedLog:
    """`llmtools.logs.open_log()` (and `open_shared_log()`) inside a worker: rows are
    written by the parent."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel

    def start(self, **kwargs) -> str:
        return self.channel.call("logs.start", (), kwargs)

    def finish(self, response_id: str, **kwargs) -> None:
        self.channel.call("logs.finish", (response_id,), kwargs)

    def close(self) -> None:
        """Nothing is open on this side."""

    release = close  # as SharedLogStore's (llm-map's calls share one store)


def forwarded_names() -> list[str]:
    """The public functions of llmtools.services that a worker forwards."""
    import inspect

    from llmtools import services

    return [name for name, value in vars(services).items()
            if inspect.isfunction(value) and value.__module__ == services.__name__
            and not name.startswith("_") and name not in LOCAL_ONLY | COMPOSED_IN_WORKER]


def route_services(channel: Channel) -> None:
    """From now on, in this process, llmtools.services and open_log go through `channel`."""
    from llmtools import logs, services

    def stub(name: str):
        def forward(*args, **kwargs):
            return channel.call(name, args, kwargs)
        forward.__name__ = forward.__qualname__ = name
        return forward

    replaced = {}
    for name in forwarded_names():
        replaced[getattr(services, name)] = stub(name)
    for name in LOCAL_ONLY:
        if hasattr(services, name):
            replaced[getattr(services, name)] = _refused(name)
    replaced[logs.open_log] = lambda: ForwardedLog(channel)
    replaced[logs.open_shared_log] = lambda: ForwardedLog(channel)
    _rebind(replaced)


def _rebind(replaced: dict) -> None:
    """Swap each original for its stand-in wherever this package already holds it: in
    services and logs, and in any module that did `from llmtools.services import fetch`
    before the worker set up its channel."""
    import sys

    for module_name, module in list(sys.modules.items()):
        if module is None or not (module_name == "llmtools" or module_name.startswith("llmtools.")):
            continue
        for attribute, value in list(vars(module).items()):
            try:
                stand_in = replaced.get(value)
            except TypeError:  # an unhashable module attribute
                continue
            if stand_in is not None:
                setattr(module, attribute, stand_in)


def _refused(name: str):
    def refuse(*args, **kwargs):
        raise ServiceError(f"llmtools.services.{name} is not available inside a runtime")
    return refuse
