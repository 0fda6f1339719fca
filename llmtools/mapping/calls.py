"""Many calls to one model at once: a bound on concurrency, retries per call, results in order.

`ModelCaller.call_many(prompts)` returns one `CallResult` per prompt, in the prompts'
order whatever order the calls finished in. Each call is an `Exchange` (logged, priced,
through `llmtools.services`, so the daemon or the llm-exec sandbox can carry it). A call
that fails is tried again (`retries` more times, with backoff) before it counts as
failed; without `keep_going` the first call that fails for good stops the rest from
starting, and `call_many` raises it once the running ones are done.

Use it as a context manager: in this process the calls share one provider (one SDK
client, one loaded model), released at the end.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from llmtools.errors import ExitStatus, InputError, LlmtoolsError, ProviderError, UsageError, worst_status
from llmtools.providers.base import ModelSpec, Request

DEFAULT_RETRIES = 2
# Concurrent calls when -j is not given: hosted APIs take many, a server of one's own a few,
# a local model one at a time (it has one context and would only thrash).
DEFAULT_JOBS = {"anthropic": 8, "openai": 8, "compatible": 4, "local": 1}
OTHER_JOBS = 4
# Failures that the same request would meet again, so retrying only wastes time.
NOT_RETRIED = (UsageError, InputError)


def default_jobs(spec: ModelSpec) -> int:
    from llmtools import providers

    kind = "compatible" if spec.provider == "openai" and providers.is_compatible_server(spec) else spec.provider
    return DEFAULT_JOBS.get(kind, OTHER_JOBS)


@dataclasses.dataclass
class CallResult:
    text: str | None = None
    error: LlmtoolsError | None = None
    attempts: int = 0
    cost_usd: float | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class MapFailed(LlmtoolsError):
    """Some calls failed for good (and --keep-going was not given)."""


Progress = Callable[["ModelCaller"], None]


@dataclasses.dataclass
class Tally:
    done: int = 0
    total: int = 0
    failed: int = 0
    cost_usd: float = 0.0


class ModelCaller:
    def __init__(self, spec: ModelSpec, *, jobs: int | None = None, retries: int = DEFAULT_RETRIES,
                 keep_going: bool = False, log: bool = True, tool: str = "llm-map",
                 max_tokens: int | None = None, temperature: float | None = None,
                 thinking: str | None = None, conversation_id: str | None = None,
                 on_progress: Progress | None = None, sleep: Callable[[float], None] = time.sleep) -> None:
        from llmtools.logs import new_conversation_id

        self.spec = spec
        self.jobs = max(1, jobs or default_jobs(spec))
        if spec.provider == "local" and self.jobs > 1:
            # One loaded model has one context: calls would only queue behind each other
            # (and one model process must not be driven from two threads).
            from llmtools.notices import warn

            warn(f"model {spec.name} answers one call at a time; -j {self.jobs} ignored")
            self.jobs = 1
        self.retries = max(0, retries)
        self.keep_going = keep_going
        self.log = log
        self.tool = tool
        self.max_tokens, self.temperature, self.thinking = max_tokens, temperature, thinking
        self.conversation_id = conversation_id or new_conversation_id()
        self.on_progress = on_progress
        self.sleep = sleep
        self.tally = Tally()
        self._lock = threading.Lock()
        self._streams = contextlib.ExitStack()
        self._stream_factory = None
        self._log_store: Any = None

    def __enter__(self) -> ModelCaller:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        """Release the model (its SDK client, or a local model's process)."""
        self._streams.close()
        self._stream_factory = None
        if self._log_store is not None:
            self._log_store.release()
            self._log_store = None

    def _streams_for_calls(self):
        with self._lock:
            if self._stream_factory is None:
                from llmtools import services

                self._stream_factory = self._streams.enter_context(services.chat_streams(self.spec))
            return self._stream_factory

    def _shared_log(self):
        with self._lock:
            if self._log_store is None and self.log:
                from llmtools.logs import open_shared_log

                self._log_store = open_shared_log()
            return self._log_store

    def call(self, messages: list[dict], *, stream_to: Callable[[str], None] | None = None,
             max_tokens: int | None = None) -> str:
        """One call (no retries beyond the provider's own); its text, streamed to `stream_to` too."""
        from llmtools.exchange import Exchange
        from llmtools.providers.base import TextDelta

        request = Request(messages=messages, max_tokens=max_tokens or self.max_tokens,
                          temperature=self.temperature, thinking=self.thinking)
        exchange = Exchange(self.spec, request, tool=self.tool, conversation_id=self.conversation_id,
                            log=self.log, stream_factory=self._streams_for_calls(),
                            log_store=self._shared_log())
        try:
            with contextlib.closing(exchange.events()) as events:
                for event in events:
                    if stream_to is not None and isinstance(event, TextDelta):
                        stream_to(event.text)
        finally:
            with self._lock:
                self.tally.cost_usd += exchange.outcome.cost_usd or 0.0
        return exchange.outcome.text

    def _with_retries(self, messages: list[dict], stop: threading.Event) -> CallResult:
        from llmtools.providers.retry import backoff_delay

        result = CallResult()
        for attempt in range(1, self.retries + 2):
            if stop.is_set():
                result.error = result.error or LlmtoolsError("not started: an earlier call failed")
                return result
            result.attempts = attempt
            try:
                result.text, result.error = self.call(messages), None
                return result
            except NOT_RETRIED as error:
                result.error = error
                return result
            except (ProviderError, LlmtoolsError) as error:
                result.error = error
                if attempt <= self.retries:
                    self.sleep(backoff_delay(attempt, self.spec.retry_base_delay,
                                             getattr(error, "retry_after", None)))
        return result

    def call_many(self, prompts: list[list[dict]]) -> list[CallResult]:
        """Results in the order of `prompts`; raises MapFailed unless keep_going."""
        stop = threading.Event()
        results: list[CallResult | None] = [None] * len(prompts)
        with self._lock:
            self.tally.total += len(prompts)
        self._report()

        def run(position: int) -> None:
            result = self._with_retries(prompts[position], stop)
            results[position] = result
            with self._lock:
                self.tally.done += 1
                self.tally.failed += 0 if result.ok else 1
            if not result.ok and not self.keep_going:
                stop.set()
            self._report()

        with ThreadPoolExecutor(max_workers=min(self.jobs, max(1, len(prompts))),
                                thread_name_prefix="llm-map") as pool:
            for future in [pool.submit(run, position) for position in range(len(prompts))]:
                future.result()
        finished = [result or CallResult(error=LlmtoolsError("not run")) for result in results]
        self._fail_if_needed(finished)
        return finished

    def _report(self) -> None:
        if self.on_progress is not None:
            self.on_progress(self)

    def _fail_if_needed(self, results: list[CallResult]) -> None:
        from llmtools.notices import warn

        failed = [(position, result) for position, result in enumerate(results) if not result.ok]
        for position, result in failed:
            if result.attempts:  # calls that never started are not news
                warn(f"call {position + 1} of {len(results)} failed after {result.attempts} "
                     f"attempt{'s' if result.attempts != 1 else ''}: {result.error}")
        if failed and not self.keep_going:
            status = worst_status(result.error.status for _, result in failed
                                  if result.error is not None and result.attempts)
            raise MapFailed(f"{sum(1 for _, r in failed if r.attempts)} of {len(results)} calls to model "
                            f"{self.spec.name} failed (--keep-going answers from the rest)",
                            status=status if status != ExitStatus.OK else ExitStatus.FAILURE)
