"""The parent's side of service calls from a runtime worker (see channel.py).

The parent (the daemon, or llm-exec without one) runs what the worker asks of
`llmtools.services`, each call in a thread of its own so the block's clock keeps
running, and streams the answer back. What it agrees to:

- only the public functions of `llmtools.services` (not the runtimes or the daemon's
  controls), plus writing the log rows of the worker's model calls;
- a model spec from the worker is never trusted for its key (it has none): the spec of
  the block's caller gets the caller's key back only if nothing else in it changed, and
  any other spec is resolved again by its name from the configuration, so code cannot
  send a key to an address of its choosing;
- `fetch` only of http(s) URLs and without cookies: a worker that cannot read a file
  must not get the parent to read it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from llmtools.runtime.channel import ServiceError, decode, forwarded_names, pack

if TYPE_CHECKING:
    from llmtools.runtime.process import WorkerProcess


def _check_fetch(args: list, kwargs: dict) -> None:
    urls = args[0] if args else kwargs.get("urls")
    if not isinstance(urls, list) or not all(
            isinstance(url, str) and url.lower().startswith(("http://", "https://")) for url in urls):
        raise ServiceError("a runtime may fetch http(s) URLs only")
    if kwargs.get("cookies") or kwargs.get("cookies_file"):
        raise ServiceError("a runtime may not fetch with cookies")


# Per service: a check of the arguments a worker sends, raising ServiceError to refuse.
GUARDS = {"fetch": _check_fetch}


def _is_stream(value: Any) -> bool:
    return isinstance(value, Iterator) or (
        hasattr(value, "__iter__") and not isinstance(value, (str, bytes, bytearray, dict, list, tuple, set)))


class ServiceBridge:
    def __init__(self, worker: WorkerProcess) -> None:
        self.worker = worker
        self.cancelled: set[int] = set()
        self.lock = threading.Lock()

    def handle(self, event: dict) -> None:
        """A "service" or "service_cancel" event from the worker."""
        if event.get("event") == "service_cancel":
            with self.lock:
                self.cancelled.add(event.get("id"))  # type: ignore[arg-type]
            return
        threading.Thread(target=self._serve, args=(event,), name="runtime-service", daemon=True).start()

    # --- answering ---

    def _reply(self, call_id: Any, kind: str, value: Any = None) -> bool:
        message: dict = {"op": "service_reply", "id": call_id, "kind": kind}
        try:
            message["data"] = pack(value)
        except Exception as error:  # noqa: BLE001 - an answer that cannot be pickled is described
            message.update(kind="error", data=pack(ServiceError(f"{type(value).__name__}: {value}")),
                           message=f"the answer could not be sent: {error}")
        try:
            return self.worker.send(message)
        except (OSError, ValueError, AssertionError):
            return False  # the worker is gone

    def _serve(self, event: dict) -> None:
        call_id = event.get("id")
        try:
            result = self._call(str(event.get("name")), decode(event.get("args") or []),
                                decode(event.get("kwargs") or {}))
        except BaseException as error:  # noqa: BLE001 - every failure goes back to the worker
            self._reply(call_id, "error", error)
            return
        if callable(result) and not isinstance(result, type):
            self._reply(call_id, "callable")
        elif _is_stream(result):
            self._stream(call_id, result)
        else:
            self._reply(call_id, "value", result)

    def _stream(self, call_id: Any, items) -> None:
        with contextlib.ExitStack() as stack:
            if hasattr(items, "close"):
                stack.callback(items.close)
            if not self._reply(call_id, "stream"):
                return
            try:
                for item in items:
                    with self.lock:
                        if call_id in self.cancelled:
                            self.cancelled.discard(call_id)
                            return
                    if not self._reply(call_id, "item", item):
                        return
            except BaseException as error:  # noqa: BLE001 - the stream's failure is the worker's error
                self._reply(call_id, "error", error)
                return
            self._reply(call_id, "end")

    # --- what the worker may ask ---

    def _call(self, name: str, args: list, kwargs: dict) -> Any:
        if name in ("logs.start", "logs.finish"):
            return self._log(name, args, kwargs)
        if name.endswith("()"):  # calling what a service returned: chat_stream(spec)(spec, request)
            outer_args, outer_kwargs, *call_args = args
            factory = self._service(name[:-2], outer_args, outer_kwargs)
            return factory(*self._keyed(call_args), **self._keyed(kwargs))
        return self._service(name, args, kwargs)

    def _service(self, name: str, args: list, kwargs: dict) -> Any:
        from llmtools import services

        if name not in forwarded_names():
            raise ServiceError(f"llmtools.services.{name} is not available to a runtime")
        args, kwargs = self._keyed(list(args)), self._keyed(dict(kwargs))
        guard = GUARDS.get(name)
        if guard is not None:
            guard(args, kwargs)
        return getattr(services, name)(*args, **kwargs)

    @staticmethod
    def _log(name: str, args: list, kwargs: dict) -> Any:
        from llmtools.logs import open_log

        store = open_log()
        try:
            if name == "logs.start":
                return store.start(conversation_id=str(kwargs["conversation_id"]), tool=str(kwargs["tool"]),
                                   model=str(kwargs["model"]), messages=list(kwargs["messages"]),
                                   prompt=kwargs.get("prompt"))
            return store.finish(*args[:1], **kwargs)
        finally:
            store.close()

    def _keyed(self, value: Any) -> Any:
        """Model specs among the arguments, with the key the parent holds for them."""
        from llmtools.providers.base import ModelSpec

        if isinstance(value, ModelSpec):
            return self.keyed_spec(value)
        if isinstance(value, list):
            return [self._keyed(item) for item in value]
        if isinstance(value, dict):
            return {key: self._keyed(item) for key, item in value.items()}
        return value

    def keyed_spec(self, spec):
        from llmtools.config import resolve_model
        from llmtools.providers.base import ModelSpec

        known = self.worker.caller_model
        if known:
            unkeyed = {key: value for key, value in known.items() if key != "api_key"}
            sent = {key: value for key, value in dataclasses.asdict(spec).items() if key != "api_key"}
            if sent == unkeyed:
                return ModelSpec(**known)
        return resolve_model(spec.name or None)
