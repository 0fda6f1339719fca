"""Answering an instruction over content too long to read at once (LLMVM's `llm_call`).

    auto       if everything fits the model's context, one call with all of it; else ask the
               model, shown a few sample chunks, whether the instruction needs the whole
               content (then mapreduce) or only its most relevant parts (then top)
    top        rank the chunks against the instruction (and the stack's question) and answer
               from the best ones that fit, put back in document order
    mapreduce  the instruction over every chunk concurrently, then the partial answers
               combined, in rounds when they do not fit in one call

Chunks that hold nothing relevant answer NOTHING in the map step and are left out of the reduce.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from llmtools.errors import UsageError
from llmtools.mapping import prompts
from llmtools.mapping.calls import ModelCaller
from llmtools.mapping.chunking import DEFAULT_CHUNK_TOKENS, Chunk, chunk_messages
from llmtools.mapping.limits import FIT_MARGIN, context_limit
from llmtools.providers.base import ModelSpec
from llmtools.stack import content_text

STRATEGIES = ("auto", "top", "mapreduce")
# When a model's context is not known (echo, script, a server without context_size).
DEFAULT_CONTEXT = 8192
DEFAULT_ANSWER_ROOM = 1024
DECIDE_SAMPLES = 3
PROMPT_OVERHEAD = 200  # tokens of system text and framing around the content
MIN_MAP_BUDGET = 64  # less room than this for content, and reading in chunks is pointless
CHUNK_FRAMING = 16  # tokens of the <excerpt ...> tags around each chunk's text


def content_budget(spec: ModelSpec, max_tokens: int | None, instruction: str) -> int:
    """Tokens of content one call may carry, with room for the answer and a tokenizer margin."""
    from llmtools.mapping import tokens

    context = context_limit(spec) or DEFAULT_CONTEXT
    room = min(max_tokens or DEFAULT_ANSWER_ROOM, context // 2)
    usable = int((context - room) / FIT_MARGIN) - PROMPT_OVERHEAD - tokens.count(instruction)
    if usable < 32:
        raise UsageError(f"model {spec.name}'s {context}-token context leaves no room for content "
                         f"next to this instruction and {room} tokens of answer")
    return usable


@dataclasses.dataclass
class MapRequest:
    instruction: str
    messages: list[dict]  # the content
    question: str | None = None  # the stack's own question, which ranking also uses
    strategy: str = "auto"
    chunk_tokens: int = DEFAULT_CHUNK_TOKENS
    embedder: str | None = None
    system: str | None = None  # the stack's system text, for the final answer

    @property
    def query(self) -> str:
        return f"{self.question}\n{self.instruction}" if self.question else self.instruction


@dataclasses.dataclass
class MapAnswer:
    text: str
    strategy: str  # what ran: "all", "top" or "mapreduce"
    chunks: int
    used: list[int]  # positions of the chunks the answer was made from
    failed: int = 0


def _source(message: dict) -> object:
    return (message.get("meta") or {}).get("source")


def split_question(messages: list[dict], *, after_sources_only: bool = True) -> tuple[list[dict], str | None]:
    """(content, question): a short user message typed after content (not itself from a file
    or URL) is the question. With `after_sources_only` the content must have come from files
    or URLs, so a stack of plain messages (`--each`-like lists) is all content."""
    from llmtools.mapping import tokens

    content = [message for message in messages if message["role"] != "system"]
    if len(content) > 1:
        last = content[-1]
        text = content_text(last["content"])
        typed = last["role"] == "user" and not _source(last)
        if typed and (not after_sources_only or any(_source(m) for m in content[:-1])) and tokens.count(text) < 200:
            return content[:-1], text
    return content, None


def chunks_for(request: MapRequest, budget: int) -> list[Chunk]:
    """The request's content in chunks, each small enough to fit a call with room to spare,
    whatever --chunk-tokens asked for."""
    return chunk_messages(request.messages, min(request.chunk_tokens, max(32, budget // 2)))


def fits(chunks: list[Chunk], budget: int) -> bool:
    """Whether all of `chunks`, framed as excerpts, fit `budget` tokens."""
    return sum(chunk.tokens + CHUNK_FRAMING for chunk in chunks) <= budget


def best_that_fit(chunks: list[Chunk], ranked: list[int], budget: int) -> list[Chunk]:
    """The best-ranked chunks whose tokens fit `budget`, in document order."""
    chosen, used = [], 0
    for position in ranked:
        size = chunks[position].tokens + CHUNK_FRAMING
        if used + size <= budget:
            chosen.append(position)
            used += size
    return [chunks[position] for position in sorted(chosen)]


def select(request: MapRequest, budget: int) -> list[Chunk]:
    """The chunks `top` would answer from (no model call: ranking only)."""
    from llmtools import services

    chunks = chunks_for(request, budget)
    if fits(chunks, budget):
        return chunks
    return best_that_fit(chunks, services.embedder(request.embedder).rank(chunks, request.query), budget)


def answer(caller: ModelCaller, request: MapRequest, *, stream_to: Callable[[str], None] | None = None,
           max_tokens: int | None = None) -> MapAnswer:
    if request.strategy not in STRATEGIES:
        raise UsageError(f"--strategy must be one of {', '.join(STRATEGIES)} (got {request.strategy!r})")
    budget = content_budget(caller.spec, max_tokens, request.instruction)
    chunks = chunks_for(request, budget)
    if not chunks:
        raise UsageError("no content to read: pipe a stack or text in, or use -p")
    strategy = request.strategy
    if strategy == "auto":
        strategy = _decide(caller, chunks, request, budget)
    if strategy in ("all", "top"):
        chosen = chunks if strategy == "all" else best_that_fit(
            chunks, _ranker(request).rank(chunks, request.query), budget)
        text = caller.call(prompts.answer_messages(chosen, len(chunks), request.instruction, request.system),
                           stream_to=stream_to)
        return MapAnswer(text, strategy, len(chunks), [chunk.index for chunk in chosen])
    return _map_reduce(caller, chunks, request, budget, stream_to)


def _ranker(request: MapRequest):
    from llmtools import services

    return services.embedder(request.embedder)


def _decide(caller: ModelCaller, chunks: list[Chunk], request: MapRequest, budget: int) -> str:
    """"all" when everything fits; else the model's choice between "mapreduce" and "top"."""
    if fits(chunks, budget):
        return "all"
    step = max(1, len(chunks) // DECIDE_SAMPLES)
    samples = [chunks[position] for position in range(0, len(chunks), step)][:DECIDE_SAMPLES]
    reply = caller.call(prompts.decide_messages(samples, len(chunks), request.instruction), max_tokens=8)
    return "mapreduce" if prompts.wants_everything(reply) else "top"


def _map_reduce(caller: ModelCaller, chunks: list[Chunk], request: MapRequest, budget: int,
                stream_to: Callable[[str], None] | None) -> MapAnswer:
    results = caller.call_many([prompts.map_messages(chunk, len(chunks), request.instruction)
                                for chunk in chunks])
    return reduce_results(caller, chunks, results, request.instruction, budget, stream_to, system=request.system)


def reduce_results(caller: ModelCaller, chunks: list[Chunk], results: list, instruction: str, budget: int,
                   stream_to: Callable[[str], None] | None, *, system: str | None = None) -> MapAnswer:
    """The map step's results (CallResults, one per chunk) combined into the answer."""
    partials, used = [], []
    for chunk, result in zip(chunks, results, strict=True):
        if result.ok and result.text is not None and not prompts.is_nothing(result.text):
            partials.append(result.text)
            used.append(chunk.index)
    partials = reduce_until_fits(caller, partials, instruction, budget)
    text = caller.call(prompts.reduce_messages(partials, instruction, final=True, system=system), stream_to=stream_to)
    return MapAnswer(text, "mapreduce", len(chunks), used, failed=sum(not r.ok for r in results))


def group_to_fit(partials: list[str], budget: int) -> list[list[str]]:
    """Consecutive partial answers in groups of at least two whose text fits `budget` tokens."""
    from llmtools.mapping import tokens

    groups: list[list[str]] = [[]]
    used = 0
    for text in partials:
        size = tokens.count(text) + 16
        if groups[-1] and used + size > budget and len(groups[-1]) > 1:
            groups.append([])
            used = 0
        groups[-1].append(text)
        used += size
    return groups


def reduce_until_fits(caller: ModelCaller, partials: list[str], instruction: str, budget: int) -> list[str]:
    """Combine partial answers in rounds (each group concurrently) until all fit one call."""
    from llmtools.mapping import tokens

    while len(partials) > 1 and tokens.count(prompts.partials_text(partials)) > budget:
        groups = group_to_fit(partials, budget)
        if len(groups) == len(partials):  # each too big to pair with another: cannot shrink
            break
        results = caller.call_many([prompts.reduce_messages(group, instruction, final=False)
                                    for group in groups])
        partials = [result.text for result in results if result.ok and result.text]
    return partials


def each(caller: ModelCaller, items: list[dict], instruction: str) -> list:
    """The instruction over each item on its own; CallResults in the items' order."""
    return caller.call_many([prompts.each_messages(item, instruction) for item in items])


def items_of(messages: list[dict]) -> list[dict]:
    """What --each goes over: the stack's messages, or the lines of a single text message."""
    content = [message for message in messages if message["role"] != "system"]
    if len(content) == 1 and isinstance(content[0]["content"], str):
        return [{"role": "user", "content": line} for line in content[0]["content"].splitlines() if line.strip()]
    return content
