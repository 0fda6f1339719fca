"""A chat session: the thread so far, the model, and one turn at a time.

Each turn is an `Exchange` like any `llm` call, with this session's conversation id, so
its log row is written when the turn starts and completed however it ends: `llm -c`,
`llm --cid ID` and `llm logs` see the session as it goes. A turn cancelled with Ctrl-C
keeps what arrived: the partial answer joins the thread (and the log) marked interrupted.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from typing import Protocol

from llmtools import stack
from llmtools.providers.base import ModelSpec, Request


class AnswerDisplay(Protocol):
    """Where a streaming answer is shown (the command layer's AnswerWriter)."""

    def thinking(self, text: str) -> None: ...

    def text(self, text: str) -> None: ...

    def close(self, messages: list[dict] | None = None) -> None: ...


@dataclasses.dataclass
class ModelOptions:
    temperature: float | None = None
    max_tokens: int | None = None
    thinking: str | None = None
    timeout: float | None = None


@dataclasses.dataclass
class TurnResult:
    answer: dict | None  # the assistant message, None if nothing arrived
    interrupted: bool
    warnings: list[str]


class ChatSession:
    def __init__(self, spec: ModelSpec, *, thread: list[dict] | None = None,
                 conversation_id: str | None = None, options: ModelOptions | None = None,
                 log: bool = True, stream_factory=None) -> None:
        self.spec = spec
        self.thread: list[dict] = list(thread or [])
        self.conversation_id = conversation_id or _new_id()
        self.options = options or ModelOptions()
        self.log = log
        self.stream_factory = stream_factory
        self._pending: list[dict] = []
        self._lock = threading.Lock()

    # --- the thread -------------------------------------------------------------------

    def add_context(self, messages: list[dict]) -> None:
        """Messages that join the thread with the next turn (the named pipe, /p). Thread-safe."""
        with self._lock:
            self._pending.extend(messages)

    def pending(self) -> list[dict]:
        with self._lock:
            return list(self._pending)

    def _take_pending(self) -> list[dict]:
        with self._lock:
            taken, self._pending = self._pending, []
        return taken

    def set_system(self, text: str | None) -> None:
        """Replace the leading system message (or add one); None or "" removes it."""
        if self.thread and self.thread[0]["role"] == "system":
            self.thread.pop(0)
        if text:
            self.thread.insert(0, stack.message("system", text))

    def system(self) -> str | None:
        if self.thread and self.thread[0]["role"] == "system":
            return stack.text_of(self.thread[0])
        return None

    def new_thread(self) -> None:
        """Start over: a new conversation, keeping the system prompt."""
        system = self.system()
        self.thread = []
        self.conversation_id = _new_id()
        self._take_pending()
        self.set_system(system)

    def replace_thread(self, messages: list[dict]) -> None:
        self.thread = list(messages)

    def set_model(self, name: str) -> None:
        from llmtools.config import resolve_model

        spec = resolve_model(name)
        if self.options.timeout is not None:
            spec.timeout = self.options.timeout
        self.spec = spec

    def last_answer(self) -> str | None:
        for msg in reversed(self.thread):
            if msg["role"] == "assistant":
                return stack.text_of(msg)
        return None

    def whole_thread(self) -> list[dict]:
        """The thread with what is pending for the next turn."""
        return [*self.thread, *self.pending()]

    # --- a turn -----------------------------------------------------------------------

    def messages_for_turn(self, text: str | list) -> list[dict]:
        """The thread, then what is pending (taken now), then `text` as the user's message."""
        return [*self.thread, *self._take_pending(), stack.message("user", text)]

    def request_for(self, messages: list[dict]) -> tuple[Request, list[str]]:
        from llmtools.ask import check_request, check_thinking

        options = self.options
        request = Request(messages=messages, max_tokens=options.max_tokens,
                          temperature=options.temperature, thinking=check_thinking(options.thinking))
        return request, check_request(self.spec, request)

    def turn(self, text: str | list, display: AnswerDisplay, *, tool: str = "llm chat") -> TurnResult:
        """Send the thread, what is pending and `text`; stream the answer into `display`.

        Ctrl-C (KeyboardInterrupt) while the answer streams ends the turn, not the session:
        the thread keeps the question and the partial answer, as the log does.
        """
        from llmtools.exchange import Exchange

        messages = self.messages_for_turn(text)
        try:
            request, warnings = self.request_for(messages)
        except BaseException:
            self.add_context(messages[len(self.thread):-1])  # refused before sending: nothing is lost
            raise
        exchange = Exchange(self.spec, request, tool=tool, conversation_id=self.conversation_id,
                            log=self.log, stream_factory=self.stream_factory)
        self.conversation_id = exchange.conversation_id
        interrupted = False
        try:
            exchange.show(display)
        except KeyboardInterrupt:
            interrupted = True
        finally:
            answer = exchange.assistant_message() if exchange.outcome.text else None
            self.thread = messages + ([answer] if answer else [])
            with contextlib.suppress(KeyboardInterrupt):
                display.close(None)
        return TurnResult(answer, interrupted, warnings)


def _new_id() -> str:
    from llmtools.logs import new_conversation_id

    return new_conversation_id()


def resume(*, continue_last: bool, conversation: str | None):
    """The conversation `-c` or `--cid` names (`ask.Thread`: its id, messages and model); an
    empty Thread for neither."""
    from llmtools.ask import Thread, choose_conversation

    if not continue_last and not conversation:
        return Thread()
    from llmtools.logs import open_log

    store = open_log()
    try:
        return choose_conversation(store, continue_last=continue_last, conversation=conversation,
                                   stdin_messages=[], tool="llm")
    finally:
        store.close()


def continued_options(thread, *, temperature: float | None, max_tokens: int | None, thinking: str | None,
                      timeout: float | None) -> ModelOptions:
    """As `llm -c`: a continued conversation keeps its temperature, max tokens and thinking
    unless the option's flag says otherwise."""
    kept = thread.options
    return ModelOptions(temperature=temperature if temperature is not None else kept.get("temperature"),
                        max_tokens=max_tokens if max_tokens is not None else kept.get("max_tokens"),
                        thinking=thinking if thinking is not None else kept.get("thinking"), timeout=timeout)
