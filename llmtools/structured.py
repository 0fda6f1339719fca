"""Model calls that want JSON back: llm-bind, llm-compare and the runtime's llm_bind.

    ask = asker(spec, tool="llm-bind", log=True)
    text = ask(messages, schema)

The request carries the schema when the model's provider can hold its output to one
(`supports_schema` in the provider registry: Anthropic's forced tool, OpenAI's `response_format`, a
llama.cpp grammar for local models); otherwise the prompt alone asks for the JSON. The
caller checks what comes back against the schema either way.

Each call goes through `Exchange`, so it is logged, timed and priced like any other, and
reaches the model through `llmtools.services` (the daemon's warm clients when one runs;
the channel a sandboxed runtime is given, once there is one): never a provider directly.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable

from llmtools.providers.base import ModelSpec, Request


@dataclasses.dataclass
class CallOptions:
    """What the user set for the call (the -m, --temperature, --max-tokens, -z flags)."""

    max_tokens: int | None = None
    temperature: float | None = None
    thinking: str | None = None


def supports_schema(spec: ModelSpec) -> bool:
    """Whether `spec`'s provider constrains output to a schema (a registry lookup: no SDK)."""
    from llmtools.providers import entry

    return entry(spec.provider).supports_schema


def asker(spec: ModelSpec, *, tool: str, log: bool = True, options: CallOptions | None = None,
          conversation_id: str | None = None, stream_factory=None) -> Callable[[list[dict], dict], str]:
    """An `ask(messages, schema) -> text` for `llmtools.bind` and `llmtools.compare`."""
    options = options or CallOptions()
    with_schema = supports_schema(spec)

    def ask(messages: list[dict], schema: dict) -> str:
        from llmtools.exchange import Exchange

        request = Request(messages=messages, max_tokens=options.max_tokens,
                          temperature=options.temperature, thinking=options.thinking,
                          schema=schema if with_schema else None)
        exchange = Exchange(spec, request, tool=tool, log=log, conversation_id=conversation_id,
                            stream_factory=stream_factory)
        with contextlib.closing(exchange.events()) as events:
            for _ in events:
                pass
        return exchange.outcome.text

    return ask
