"""Draining a provider stream in tests, the way the caller of the retry layer sees it."""

from __future__ import annotations

from llmtools.providers.base import Provider, Request, TextDelta, ThinkingDelta, Usage
from llmtools.providers.retry import stream_with_retries


class Run:
    """Drains `stream_with_retries`: the events that arrived, the retry notices, the error.

    Retry notices are collected instead of printed; the backoff really sleeps (keep
    `retry_base_delay` small), since honouring `retry-after` is part of what is tested.
    """

    def __init__(self, provider: Provider, request: Request) -> None:
        self.events: list = []
        self.retries: list[str] = []
        self.error: Exception | None = None
        from llmtools.notices import notices_to

        try:
            with notices_to(lambda level, text: self.retries.append(text)):
                for event in stream_with_retries(provider, request):
                    self.events.append(event)
        except Exception as error:  # noqa: BLE001  (the tests look at it)
            self.error = error

    @property
    def text(self) -> str:
        return "".join(event.text for event in self.events if isinstance(event, TextDelta))

    @property
    def thinking(self) -> str:
        return "".join(event.text for event in self.events if isinstance(event, ThinkingDelta))

    def usage(self) -> tuple[int | None, int | None]:
        """(input, output) tokens merged as the caller merges them: a later non-None wins."""
        input_tokens = output_tokens = None
        for event in self.events:
            if isinstance(event, Usage):
                if event.input_tokens is not None:
                    input_tokens = event.input_tokens
                if event.output_tokens is not None:
                    output_tokens = event.output_tokens
        return input_tokens, output_tokens
