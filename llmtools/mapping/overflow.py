"""A prompt too long for the model: mapped (the default), cut (`--no-map`) or refused (`--strict`).

`llm` and `llm_call` ask `overflows` before sending. Counting costs nothing for most
prompts: a cl100k token is at least one byte, so a prompt with fewer bytes than the
budget has tokens fits without loading a tokenizer. Only a prompt that may not fit is
counted, and only one that does not fit is read the way `llm-map` reads (strategy auto).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING

from llmtools import stack
from llmtools.errors import UsageError
from llmtools.providers.base import ModelSpec
from llmtools.stack import content_text

if TYPE_CHECKING:  # the map machinery is imported only when a prompt does not fit
    from llmtools.mapping.calls import ModelCaller

DEFAULT_INSTRUCTION = "Do what the content asks; if it asks nothing, summarise it."
ANSWER_ROOM = 512  # as providers/context.py keeps when --max-tokens is not given


@dataclasses.dataclass
class Overflow:
    tokens: int
    context: int
    budget: int

    def describe(self, model: str) -> str:
        return (f"the prompt (about {self.tokens} tokens) does not fit model {model}'s "
                f"{self.context}-token context")


def overflows(spec: ModelSpec, messages: list[dict], max_tokens: int | None) -> Overflow | None:
    """How the prompt overflows the model's context, or None when it fits (or the context is unknown)."""
    from llmtools.mapping.limits import FIT_MARGIN, context_limit

    context = context_limit(spec)
    if not context:
        return None
    budget = int((context - min(max_tokens or ANSWER_ROOM, context // 2)) / FIT_MARGIN)
    size = sum(len(content_text(message["content"]).encode("utf-8")) for message in messages)
    if size <= budget:
        return None
    from llmtools.mapping import tokens  # a tokenizer, only for a prompt that may not fit

    counted = tokens.count_messages(messages)
    return Overflow(counted, context, budget) if counted > budget else None


def mappable(spec: ModelSpec, messages: list[dict], max_tokens: int | None) -> bool:
    """Whether the model's context leaves room to read the content in chunks at all: a
    tiny one (a few hundred tokens) does not, and gets the cut instead."""
    from llmtools.mapping.strategy import MIN_MAP_BUDGET, content_budget

    _, instruction, _ = split_prompt(messages)
    try:
        return content_budget(spec, max_tokens, instruction) >= MIN_MAP_BUDGET
    except UsageError:
        return False


def refuse(spec: ModelSpec, overflow: Overflow) -> UsageError:
    return UsageError(f"{overflow.describe(spec.name)} (--strict); leave out --strict to read it in "
                      f"chunks, or use --no-map to cut its middle")


def split_prompt(messages: list[dict]) -> tuple[str | None, str, list[dict]]:
    """(system text, instruction, content) of a stack about to be sent."""
    from llmtools.mapping.strategy import split_question

    systems = [content_text(message["content"]) for message in messages if message["role"] == "system"]
    content, question = split_question(messages, after_sources_only=False)
    return ("\n\n".join(systems) or None), question or DEFAULT_INSTRUCTION, content


def answer_mapped(caller: ModelCaller, messages: list[dict], *, stream_to: Callable[[str], None] | None = None,
                  max_tokens: int | None = None, embedder: str | None = None) -> tuple[str, dict]:
    """(answer, meta about the map) for a stack that overflows, read with strategy auto."""
    from llmtools.mapping.strategy import MapRequest, answer

    system, instruction, content = split_prompt(messages)
    request = MapRequest(instruction=instruction, messages=content, question=None, system=system,
                         embedder=embedder)
    found = answer(caller, request, stream_to=stream_to, max_tokens=max_tokens)
    return found.text, {"strategy": found.strategy, "chunks": found.chunks, "used": found.used}


def overflow_to_map(spec: ModelSpec, request, *, no_map: bool, strict: bool) -> Overflow | None:
    """`llm`'s rule for a prompt: None to send it as it is (it fits, `--no-map`, or a context
    too small for chunks, which the provider cuts); the overflow to read in chunks; with
    `--strict`, an overflow is a usage error."""
    if no_map and not strict:
        return None
    found = overflows(spec, request.messages, request.max_tokens)
    if found is not None and strict:
        raise refuse(spec, found)
    if found is None or no_map or not mappable(spec, request.messages, request.max_tokens):
        return None
    return found


def answer_overflowing(spec: ModelSpec, request, found: Overflow, *, tool: str, log: bool,
                       conversation_id: str | None, stream_to: Callable[[str], None] | None = None) -> dict:
    """Answer a request that does not fit, reading it as llm-map does; the assistant message."""
    from llmtools.mapping.calls import ModelCaller
    from llmtools.notices import warn

    warn(f"{found.describe(spec.name)}; reading it in chunks as llm-map does "
         f"(--no-map cuts it instead, --strict refuses it)")
    caller = ModelCaller(spec, log=log, tool=tool, conversation_id=conversation_id,
                         temperature=request.temperature, max_tokens=request.max_tokens, thinking=request.thinking)
    with caller:
        text, meta = answer_mapped(caller, request.messages, stream_to=stream_to, max_tokens=request.max_tokens)
    meta.update(model=spec.name, tool=tool, cost_usd=round(caller.tally.cost_usd, 8))
    return {"role": "assistant", "content": text, "meta": meta}


def call_with_content(spec: ModelSpec, content: list[dict], instruction: str, *, system: str,
                      log: bool = True, tool: str = "llm-exec", request_options: dict | None = None) -> str:
    """`llm_call`'s core: one call when content and instruction fit, else read as llm-map reads."""
    options = {key: value for key, value in (request_options or {}).items()
               if key in ("max_tokens", "temperature", "thinking")}
    from llmtools.mapping.calls import ModelCaller

    messages = [stack.message("system", system), *content, stack.message("user", str(instruction))]
    with ModelCaller(spec, log=log, tool=tool, **options) as caller:
        if (overflows(spec, messages, options.get("max_tokens")) is None
                or not mappable(spec, messages, options.get("max_tokens"))):
            return caller.call(messages)
        from llmtools.mapping.strategy import MapRequest, answer
        from llmtools.notices import warn

        warn(f"llm_call: the content does not fit model {spec.name}'s context; reading it in chunks")
        request = MapRequest(instruction=str(instruction), messages=content, system=system)
        return answer(caller, request, max_tokens=options.get("max_tokens")).text
