"""The CodeAct loop itself: ask, split, confirm, run, feed back, until an answer or a bound
(see the package docstring for the rules)."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from collections.abc import Callable, Iterator
from typing import Protocol

from llmtools import stack
from llmtools.codeact.feedback import (
    CUT_OFF_NOTE,
    DECLINED_NOTE,
    ERROR_LIMIT_NOTE,
    LAST_STEP_NOTE,
    format_result,
    result_message,
    system_prompt,
)
from llmtools.codeact.splitter import HELPERS_CLOSE, HelpersSplitter, clean_code
from llmtools.codeact.threads import is_own_prompt
from llmtools.providers.base import ModelSpec, Request, TextDelta, ThinkingDelta
from llmtools.runtime.results import EvaluateResult, ExecuteResult, HelperContext, helper_context

TRUNCATED_STOP_REASONS = {"max_tokens", "length"}


class Runtimes(Protocol):
    """RuntimeManager, or the daemon client's stand-in for it."""

    def execute(self, thread_id: str, code: str, *, timeout: float, memory_mb: int | None = None,
                context: HelperContext | None = None) -> ExecuteResult: ...

    def evaluate(self, thread_id: str, expression: str, *, timeout: float) -> EvaluateResult: ...


# --- events ------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Prose:
    """Model text outside code blocks: the part of the answer meant for the reader."""

    text: str


@dataclasses.dataclass(frozen=True)
class CodeText:
    """Code as the model writes it, inside a <helpers> block."""

    text: str


@dataclasses.dataclass(frozen=True)
class Thinking:
    text: str


@dataclasses.dataclass(frozen=True)
class BlockReady:
    """The model has finished writing a block (before it is confirmed, run or refused)."""

    step: int
    code: str


@dataclasses.dataclass(frozen=True)
class BlockStarted:
    step: int
    code: str


@dataclasses.dataclass(frozen=True)
class BlockFinished:
    step: int
    code: str
    result: ExecuteResult
    feedback: str  # the <helpers_result> text the model is sent


@dataclasses.dataclass(frozen=True)
class BlockSkipped:
    step: int
    code: str
    reason: str
    feedback: str | None  # sent to the model when the loop goes on, else None


Event = Prose | CodeText | Thinking | BlockReady | BlockStarted | BlockFinished | BlockSkipped

# The answer a confirm function gives: run the block, tell the model it was declined
# (and go on), or stop the loop.
RUN, SKIP, QUIT = "run", "skip", "quit"
Confirm = Callable[[str], str]


@dataclasses.dataclass
class Settings:
    thread_id: str
    max_steps: int = 10
    max_errors: int = 3
    statement_timeout: float = 120.0
    memory_mb: int | None = None
    max_output_chars: int = 8000
    log: bool = True
    temperature: float | None = None
    max_tokens: int | None = None
    thinking: str | None = None
    cwd: str = dataclasses.field(default_factory=os.getcwd)


def fetch_helpers_doc(runtimes: Runtimes, thread_id: str,
                      timeout: float) -> tuple[str, list[str], EvaluateResult]:
    """(helper documentation for the prompt, helper load errors, the evaluate result).

    Asked of the thread's own runtime, which is the process that imported the user's
    helper modules; if that fails, the built-in helpers' documentation is used.
    """
    answer = runtimes.evaluate(thread_id, "__llmtools_helpers__()", timeout=timeout)
    if answer.get("ok") and (value := answer.get("value")):
        try:
            described = json.loads(value)
            return described["doc"], list(described.get("errors") or []), answer
        except (ValueError, KeyError, TypeError):
            pass
    from llmtools.runtime import helpers

    error = answer.get("error")
    problem = (error["message"] if error else "") or "no answer"
    return helpers.describe(), [f"could not list the runtime's helpers: {problem}"], answer


class CodeActLoop:
    def __init__(self, spec: ModelSpec, messages: list[dict], runtimes: Runtimes, settings: Settings,
                 *, helpers_doc: str, confirm: Confirm | None = None, stream_factory=None,
                 conversation_id: str | None = None, documents: list[dict] | None = None) -> None:
        self.spec = spec
        # Sent to the runtime with the first block only (llmtools.codeact.documents).
        self.documents_to_send = documents or None
        self.messages = messages
        self.runtimes = runtimes
        self.settings = settings
        self.helpers_doc = helpers_doc
        self.confirm = confirm
        self.stream_factory = stream_factory
        self.conversation_id = conversation_id
        self.transcript: list[dict] = []
        self.exchanges: list = []
        self.blocks_run = 0
        # None while running; then "answered", "step_limit", "error_limit" or "quit".
        self.stop_reason: str | None = None

    def context(self) -> HelperContext:
        """What the helpers need to call this loop's model the same way (llm_call, ...)."""
        settings = self.settings
        return helper_context(self.spec, temperature=settings.temperature,
                              max_tokens=settings.max_tokens, thinking=settings.thinking,
                              log=settings.log, cwd=settings.cwd, task=self.messages)

    def _request(self) -> Request:
        settings = self.settings
        # Marked as ours so that a continued thread leaves the logged copy out (each call
        # adds it afresh); it comes first and stays the same, which prompt caches rely on.
        system = stack.message("system", system_prompt(
            self.helpers_doc, statement_timeout=settings.statement_timeout,
            max_steps=settings.max_steps, cwd=settings.cwd), tool="llm-exec")
        earlier = [message for message in self.messages if not is_own_prompt(message)]
        return Request(messages=[system, *earlier, *self.transcript],
                       max_tokens=settings.max_tokens, temperature=settings.temperature,
                       thinking=settings.thinking, stop=[HELPERS_CLOSE])

    def _ask(self, splitter: HelpersSplitter):
        """One model turn, streamed through the splitter; yields its events, returns the Exchange."""
        from llmtools.exchange import Exchange

        exchange = Exchange(self.spec, self._request(), tool="llm-exec",
                            conversation_id=self.conversation_id, log=self.settings.log,
                            stream_factory=self.stream_factory)
        self.exchanges.append(exchange)
        self.conversation_id = exchange.conversation_id
        with contextlib.closing(exchange.events()) as events:
            for event in events:
                if isinstance(event, ThinkingDelta):
                    yield Thinking(event.text)
                elif isinstance(event, TextDelta):
                    for kind, text in splitter.feed(event.text):
                        yield Prose(text) if kind == "prose" else CodeText(text)
                    if splitter.closed:
                        break  # a provider without stop sequences would write on: stop reading
        for kind, text in splitter.finish():
            yield Prose(text) if kind == "prose" else CodeText(text)
        return exchange

    def _assistant_message(self, exchange, splitter: HelpersSplitter) -> dict:
        meta = exchange.assistant_meta()
        if splitter.closed:
            meta.pop("status", None)  # "partial" only because we stopped reading at </helpers>
        return {"role": "assistant", "content": splitter.assistant_text(), "meta": meta}

    def run(self) -> Iterator[Event]:
        if self.spec.provider == "echo":
            yield from self._show_request()
            return
        settings = self.settings
        consecutive_errors = 0
        code_allowed = True
        limit_reason: str | None = None
        while True:
            splitter = HelpersSplitter()
            exchange = yield from self._ask(splitter)
            self.transcript.append(self._assistant_message(exchange, splitter))
            if splitter.code is None:
                self.stop_reason = "answered"
                return
            code = clean_code(splitter.code)
            step = self.blocks_run + 1
            yield BlockReady(step, code)
            if not code_allowed:
                self.stop_reason = limit_reason
                yield BlockSkipped(step, code, limit_reason or "limit", None)
                return
            if not splitter.closed and exchange.outcome.stop_reason in TRUNCATED_STOP_REASONS:
                consecutive_errors += 1
                feedback = CUT_OFF_NOTE
                yield BlockSkipped(step, code, "cut_off", feedback)
            elif self.confirm is not None and (answer := self.confirm(code)) != RUN:
                if answer == QUIT:
                    self.stop_reason = "quit"
                    yield BlockSkipped(step, code, "quit", None)
                    return
                self.blocks_run += 1  # a declined block is a step: the bound still holds
                feedback = DECLINED_NOTE
                yield BlockSkipped(step, code, "declined", feedback)
            else:
                self.blocks_run += 1
                yield BlockStarted(step, code)
                context = self.context()
                if self.documents_to_send:
                    context["documents"], self.documents_to_send = self.documents_to_send, None
                result = self.runtimes.execute(
                    settings.thread_id, code, timeout=settings.statement_timeout,
                    memory_mb=settings.memory_mb, context=context)
                consecutive_errors = 0 if result["ok"] else consecutive_errors + 1
                limit_reason, note = self._bound_reached(consecutive_errors)
                feedback = format_result(result, settings.max_output_chars) + note
                code_allowed = limit_reason is None
                self.transcript.append(result_message(feedback, result, settings.thread_id, step))
                yield BlockFinished(step, code, result, feedback)
                continue
            # A block that did not run (cut off, declined) still counts against the bounds.
            limit_reason, note = self._bound_reached(consecutive_errors)
            code_allowed = limit_reason is None
            self.transcript.append(result_message(feedback + note, None, settings.thread_id, step))

    def _show_request(self) -> Iterator[Event]:
        """`-m echo`: one call whose answer, what the first step would send, is all prose.
        Its system prompt holds <helpers> examples, which must not be taken for code to run.
        A dry run changes nothing: not logged, so a thread's conversation stays as it was."""
        from llmtools.exchange import Exchange

        exchange = Exchange(self.spec, self._request(), tool="llm-exec",
                            conversation_id=self.conversation_id, log=False,
                            stream_factory=self.stream_factory)
        self.exchanges.append(exchange)
        self.conversation_id = exchange.conversation_id
        with contextlib.closing(exchange.events()) as events:
            for event in events:
                if isinstance(event, TextDelta):
                    yield Prose(event.text)
        self.transcript.append(exchange.assistant_message())
        self.stop_reason = "answered"

    def _bound_reached(self, consecutive_errors: int) -> tuple[str | None, str]:
        """(the bound now reached or None, the note that tells the model to answer)."""
        if self.blocks_run >= self.settings.max_steps:
            return "step_limit", "\n" + LAST_STEP_NOTE
        if consecutive_errors >= self.settings.max_errors:
            return "error_limit", "\n" + ERROR_LIMIT_NOTE.format(count=consecutive_errors)
        return None, ""
