"""Retrying a provider stream: backoff with full jitter, honouring `retry-after`.

A request is resent only while nothing of the answer has been yielded: once text has
reached the user, resending would duplicate it, so a failure after that point is a
`StreamCut` and what arrived is kept by the caller.

Each retry is a warning on the notice channel (`llmtools.notices`), so it reads like every
other warning (`llm: warning: model sonnet: ...; retrying in 1.3s (attempt 2 of 4)`) and,
in the daemon, travels to the client that asked.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator

from llmtools import notices
from llmtools.errors import ModelCrashed, ProviderError, StreamCut
from llmtools.providers.base import Event, Provider, Request, TextDelta, ThinkingDelta

# A server asking for a longer pause than this is not waited for: the user would see a
# hung command. The error says how long the server asked for instead.
MAX_HONOURED_RETRY_AFTER = 60.0
MAX_BACKOFF = 30.0


def backoff_delay(attempt: int, base: float, retry_after: float | None) -> float:
    """Seconds to wait before attempt number `attempt + 1` (attempt counts from 1)."""
    if retry_after is not None:
        return max(0.0, retry_after)
    ceiling = min(MAX_BACKOFF, base * (2 ** (attempt - 1)))
    # "Full jitter": many clients failing together spread out instead of retrying in step.
    import random  # only a retry pays for it, not every in-process call

    return random.uniform(ceiling / 2, ceiling)


def stream_with_retries(
    provider: Provider,
    request: Request,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> Generator[Event, None, None]:
    """The provider's events, with the request resent after a retryable failure; each
    retry is a warning on the notice channel (the daemon forwards it to its client)."""
    say_retry = notices.warn
    spec = provider.spec
    attempts = max(1, spec.max_retries + 1)
    for attempt in range(1, attempts + 1):
        delivered = False
        try:
            for event in provider.stream(request):
                if isinstance(event, (TextDelta, ThinkingDelta)) and event.text:
                    delivered = True
                yield event
            return
        except ModelCrashed:
            raise  # names the model and the signal already; its own status (69), never retried
        except ProviderError as error:
            if delivered:
                if isinstance(error, StreamCut):
                    raise StreamCut(f"model {spec.name}: {error}") from error
                raise StreamCut(f"model {spec.name}: answer cut off part-way: {error}") from error
            if not error.retryable:
                raise type(error)(f"model {spec.name}: {error}", status=error.status) from error
            too_long = error.retry_after is not None and error.retry_after > MAX_HONOURED_RETRY_AFTER
            if attempt == attempts or too_long:
                tried = f"{attempt} attempt" + ("s" if attempt != 1 else "")
                detail = (f"; the server asked to retry after {error.retry_after:g}s"
                          if too_long else "")
                raise type(error)(
                    f"model {spec.name}: {error} (gave up after {tried}{detail})",
                    status=error.status,
                ) from error
            delay = backoff_delay(attempt, spec.retry_base_delay, error.retry_after)
            say_retry(f"model {spec.name}: {error}; retrying in {delay:.1f}s "
                     f"(attempt {attempt + 1} of {attempts})")
            sleep(delay)
