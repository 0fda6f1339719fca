"""The process a local model lives in: `python -P -m llmtools.providers.local_worker`.

llama.cpp is native code, and native code can crash: an instruction this CPU does not
have (SIGILL), a bad pointer (SIGSEGV), an abort, the OOM killer. Whatever loads a model
runs here, so a crash ends this process only; `LocalProvider` (the parent's side) turns
the death into a one-line error and starts a fresh worker for the next request.

Protocol: JSON lines. The parent writes ops on our stdin:
    {"op": "load", "spec": {...ModelSpec fields...}, "path": "..."}   (first, once)
    {"op": "generate", "id": N, "request": {...Request fields...}}
    {"op": "cancel", "id": N}          stop generation N at the next token
    {"op": "count_tokens", "text": "..."}
and reads events on our stdout: "loaded" (context_size), the provider events of
`llmtools.providers.base.event_to_json`, "notice" (level, text), "tokens" (count), and
"done" or "error" (kind, message, status) to end each op. End of stdin means the parent
is gone: we exit.
"""

from __future__ import annotations

import json
import os
import queue
import sys
import threading
from pathlib import Path

from llmtools.errors import ExitStatus


class _Channel:
    """Our end of the protocol. stdout is kept for it alone: llama.cpp (or anything it
    loads) printing to fd 1 would corrupt the event stream, so fd 1 becomes stderr."""

    def __init__(self) -> None:
        self.out = os.fdopen(os.dup(1), "wb", buffering=0)
        os.dup2(2, 1)
        sys.stdout = sys.stderr
        self.ops: queue.Queue[dict | None] = queue.Queue()
        self.cancelled: set[int | None] = set()  # None: all of them (stdin closed)
        threading.Thread(target=self._read, name="ops", daemon=True).start()

    def _read(self) -> None:
        for line in sys.stdin.buffer:
            try:
                op = json.loads(line)
            except ValueError:
                continue
            if op.get("op") == "cancel":
                self.cancelled.add(op.get("id"))  # checked between tokens by the main thread
            else:
                self.ops.put(op)
        self.ops.put(None)
        self.cancelled.add(None)

    def send(self, event: dict) -> None:
        self.out.write(json.dumps(event, ensure_ascii=False).encode("utf-8") + b"\n")


def _error_event(error: BaseException) -> dict:
    from llmtools.errors import LlmtoolsError, error_to_json

    if not isinstance(error, LlmtoolsError):
        error = LlmtoolsError(f"the local model failed: {type(error).__name__}: {error}")
    return error_to_json(error)


def _serve(channel: _Channel, engine) -> None:
    from llmtools.notices import notices_to
    from llmtools.providers.base import Request, event_to_json

    forward = lambda level, text: channel.send({"event": "notice", "level": level, "text": text})  # noqa: E731
    while (op := channel.ops.get()) is not None:
        try:
            if op["op"] == "generate":
                number = op["id"]
                cancelled = lambda number=number: number in channel.cancelled or None in channel.cancelled  # noqa: E731
                try:
                    with notices_to(forward):
                        for event in engine.generate(Request(**op["request"]), cancelled):
                            channel.send(event_to_json(event))
                finally:
                    channel.cancelled.discard(number)
                channel.send({"event": "done"})
            elif op["op"] == "count_tokens":
                channel.send({"event": "tokens", "count": engine.count_tokens(op["text"])})
        except Exception as error:  # noqa: BLE001  (each op's failure is the parent's to report)
            channel.send(_error_event(error))


def main() -> int:
    channel = _Channel()
    first = channel.ops.get()
    if first is None or first.get("op") != "load":
        return ExitStatus.USAGE  # only LocalProvider starts us, and it loads first
    from llmtools.providers.base import ModelSpec
    from llmtools.providers.llama_engine import LlamaEngine

    try:
        engine = LlamaEngine(ModelSpec(**first["spec"]), Path(first["path"]))
    except Exception as error:  # noqa: BLE001
        channel.send(_error_event(error))
        return ExitStatus.OK
    channel.send({"event": "loaded", "context_size": engine.context_size})
    try:
        _serve(channel, engine)
    finally:
        engine.close()
    return ExitStatus.OK


if __name__ == "__main__":
    sys.exit(main())
