"""One model call: stream it, time it, count it, price it, log it.

Every command that asks a model goes through `Exchange`, so each call is logged the
same way (the row is written when the call starts and completed however it ends),
timed the same way (`--profile`) and priced from the same table.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable, Generator, Iterator

from llmtools import stack
from llmtools.errors import LlmtoolsError, Terminated
from llmtools.providers.base import Event, Finished, ModelSpec, Request, TextDelta, ThinkingDelta, Usage
from llmtools.providers.catalog import cost_usd

StreamFactory = Callable[[ModelSpec, Request], Iterator[Event]]

# Providers' words for why an answer ended, in the one vocabulary `meta.stop_reason` uses
# (Anthropic's); other reasons ("refusal", "content_filter") are kept as they come.
STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "eos": "end_turn"}
TRUNCATED = "max_tokens"


@dataclasses.dataclass
class Outcome:
    text: str = ""
    thinking: str = ""
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None
    stop_reason: str | None = None
    ttft_s: float | None = None
    total_s: float | None = None
    cost_usd: float | None = None
    status: str = "running"
    error: str | None = None

    def tokens_per_second(self) -> tuple[float | None, float | None]:
        """(prompt tokens/s over time to first token, answer tokens/s after it)."""
        rate_in = rate_out = None
        if self.input_tokens and self.ttft_s:
            rate_in = self.input_tokens / self.ttft_s
        if self.output_tokens and self.total_s is not None and self.ttft_s is not None:
            generating = self.total_s - self.ttft_s
            if generating > 0:
                rate_out = self.output_tokens / generating
        return rate_in, rate_out


class Exchange:
    def __init__(
        self,
        spec: ModelSpec,
        request: Request,
        *,
        tool: str = "llm",
        conversation_id: str | None = None,
        log: bool = True,
        stream_factory: StreamFactory | None = None,
        log_store=None,
    ) -> None:
        """`log_store`: a store shared by many exchanges (llm-map), else each opens its own."""
        self.spec = spec
        self.request = _with_cache_setting(request)
        self.tool = tool
        self._conversation_id = conversation_id
        self.log = log
        self.log_store = log_store
        if stream_factory is None:
            from llmtools.services import chat_stream

            stream_factory = chat_stream(spec)
        self.stream_factory = stream_factory
        self.outcome = Outcome()
        self.response_id: str | None = None
        self.created = stack.now_iso()

    @property
    def conversation_id(self) -> str:
        """The conversation's id; a new one is made when first asked for (an unlogged call
        never asks, and so never imports the log's module)."""
        if self._conversation_id is None:
            from llmtools.logs import new_conversation_id

            self._conversation_id = new_conversation_id()
        return self._conversation_id

    def events(self) -> Generator[Event, None, None]:
        """Yield text and thinking deltas as they arrive; log the call however it ends.

        Use inside `contextlib.closing(...)` so that a consumer that stops early (broken
        pipe, Ctrl-C) closes the generator at once and the log row is completed then.
        """
        store = self._guarded(self._start_log) if self.log else None
        outcome = self.outcome
        started = time.perf_counter()
        text_parts: list[str] = []
        thinking_parts: list[str] = []
        try:
            for event in self.stream_factory(self.spec, self.request):
                if isinstance(event, (TextDelta, ThinkingDelta)):
                    if outcome.ttft_s is None:
                        outcome.ttft_s = time.perf_counter() - started
                    (text_parts if isinstance(event, TextDelta) else thinking_parts).append(event.text)
                    yield event
                elif isinstance(event, Usage):
                    _count(outcome, event)
                elif isinstance(event, Finished) and event.stop_reason:
                    outcome.stop_reason = STOP_REASONS.get(event.stop_reason, event.stop_reason)
            outcome.status = "ok"
        except BaseException as error:
            outcome.status, outcome.error = _ending(error)
            raise
        finally:
            outcome.total_s = time.perf_counter() - started
            outcome.text = "".join(text_parts)
            text_parts.clear()  # a 100 MB answer is held once, not twice, while it is logged
            outcome.thinking = "".join(thinking_parts)
            outcome.cost_usd = cost_usd(
                self.spec.price_input, self.spec.price_output, outcome.input_tokens,
                outcome.output_tokens, cache_read_tokens=outcome.cache_read_tokens,
                cache_write_tokens=outcome.cache_write_tokens,
                price_cache_read=self.spec.price_cache_read,
                price_cache_write=self.spec.price_cache_write)
            if store is not None:
                self._guarded(lambda: self._finish_log(store))

    def _guarded(self, write):
        """Run a log write; if the log cannot be written, say why once and go on without it:
        the answer matters more than its row (see llmtools.unlogged)."""
        import sqlite3

        try:
            return write()
        except (sqlite3.Error, OSError) as error:
            from llmtools import unlogged
            from llmtools.notices import warn
            from llmtools.statedirs import paths

            message = unlogged.record(error, paths().log_db)
            if message:
                warn(message)
            return None

    def _start_log(self):
        from llmtools.logs import open_log

        store = self.log_store or open_log()
        self.response_id = store.start(
            conversation_id=self.conversation_id, tool=self.tool, model=self.spec.name,
            messages=self.request.messages, prompt=_last_user_text(self.request.messages))
        return store

    def _finish_log(self, store) -> None:
        outcome = self.outcome
        request = self.request
        # The call's settings go in the log (not the stack), so `llm -c` can keep them.
        options = {key: value for key, value in (("max_tokens", request.max_tokens),
                                                 ("temperature", request.temperature),
                                                 ("thinking", request.thinking)) if value is not None}
        try:
            store.finish(
                self.response_id, response=outcome.text, status=outcome.status,
                error=outcome.error, meta={**self.assistant_meta(), **({"options": options} if options else {})},
                input_tokens=outcome.input_tokens, output_tokens=outcome.output_tokens,
                cost_usd=outcome.cost_usd, ttft_s=outcome.ttft_s, total_s=outcome.total_s,
                cache_read_tokens=outcome.cache_read_tokens,
                cache_write_tokens=outcome.cache_write_tokens)
        finally:
            store.close()

    def show(self, display) -> Outcome:
        """Stream the answer into `display` (its `thinking(text)` and `text(text)`), closing the
        stream however it ends (Ctrl-C, a reader gone), so the log row is completed."""
        with contextlib.closing(self.events()) as events:
            for event in events:
                if isinstance(event, ThinkingDelta):
                    display.thinking(event.text)
                elif isinstance(event, TextDelta):
                    display.text(event.text)
        return self.outcome

    def run(self) -> Outcome:
        """Consume the whole stream without showing it (for core callers such as llm-map)."""
        for _ in self.events():
            pass
        return self.outcome

    def assistant_meta(self) -> dict:
        outcome = self.outcome
        meta: dict = {"model": self.spec.name, "tool": self.tool, "created": self.created}
        if self.response_id:
            meta["id"] = self.response_id
        usage = {key: value for key, value in (("input_tokens", outcome.input_tokens),
                                               ("output_tokens", outcome.output_tokens),
                                               ("cache_read_tokens", outcome.cache_read_tokens),
                                               ("cache_write_tokens", outcome.cache_write_tokens))
                 if value is not None}
        if usage:
            meta["usage"] = usage
        if outcome.cost_usd is not None:
            meta["cost_usd"] = round(outcome.cost_usd, 8)
        timing = {key: round(value, 4) for key, value in (("ttft_s", outcome.ttft_s),
                                                          ("total_s", outcome.total_s))
                  if value is not None}
        if timing:
            meta["timing"] = timing
        if outcome.thinking:
            meta["thinking"] = outcome.thinking
        if outcome.status not in ("ok", "running"):
            meta["status"] = outcome.status
        meta["stop_reason"] = self.stop_reason()
        return meta

    def stop_reason(self) -> str:
        """Why the answer ended: the provider's reason, else how the call ended."""
        outcome = self.outcome
        if outcome.stop_reason:
            return outcome.stop_reason
        return "end_turn" if outcome.status in ("ok", "running") else outcome.status

    def truncation_warning(self) -> str | None:
        """The warning for an answer the token limit cut short, or None."""
        if self.outcome.stop_reason != TRUNCATED:
            return None
        limit = self.request.max_tokens or self.outcome.output_tokens
        shown = f" ({limit})" if limit else ""
        return f"answer stopped at the token limit{shown}; raise --max-tokens"

    def assistant_message(self) -> dict:
        return {"role": "assistant", "content": self.outcome.text, "meta": self.assistant_meta()}


USAGE_FIELDS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")


def _count(outcome: Outcome, usage: Usage) -> None:
    """Usage may arrive more than once; a later non-None count replaces an earlier one."""
    for field in USAGE_FIELDS:
        value = getattr(usage, field)
        if value is not None:
            setattr(outcome, field, value)


def _with_cache_setting(request: Request) -> Request:
    """The request with prompt caching as the `prompt_cache` setting says, decided here in
    the caller's process so the daemon's own config never matters."""
    from llmtools.config import prompt_cache_enabled

    if request.cache and not prompt_cache_enabled():
        return dataclasses.replace(request, cache=False)
    return request


def _ending(error: BaseException) -> tuple[str, str | None]:
    """(log status, error text) for a call that ended by `error` instead of finishing."""
    if isinstance(error, GeneratorExit):
        # The consumer stopped early; what stopped it is the exception it was handling when
        # it closed us (a signal often lands in its code, not in our network read).
        cause = error.__context__
        if isinstance(cause, (KeyboardInterrupt, Terminated)):
            return _ending(cause)
        return "partial", None  # the reader went away, or the caller had all it wanted
    if isinstance(error, KeyboardInterrupt):
        return "interrupted", "interrupted by Ctrl-C"
    if isinstance(error, Terminated):
        return "interrupted", "terminated by SIGTERM"
    if isinstance(error, LlmtoolsError):
        return "error", str(error)
    return "error", f"{type(error).__name__}: {error}"


# The log's prompt column is for showing and searching; the full text is in its messages
# column already. A 100 MB prompt stored twice would cost SQLite a 200 MB row in memory.
PROMPT_COLUMN_CHARS = 64 * 1024


def _last_user_text(messages: list[dict]) -> str | None:
    for msg in reversed(messages):
        if msg["role"] == "user":
            text = stack.text_of(msg)
            if len(text) > PROMPT_COLUMN_CHARS:
                more = len(text) - PROMPT_COLUMN_CHARS
                text = f"{text[:PROMPT_COLUMN_CHARS]}\n[... {more} more characters in the messages sent]"
            return text
    return None
