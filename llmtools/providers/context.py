"""Fitting a prompt into a model's context window, and saying what was cut.

Providers that know their model's context size (local GGUF models, OpenAI-compatible
servers with `context_size` in config) call `fit_messages` before sending. The policy,
never silent:

1. Room is kept for the answer: `--max-tokens`, else `DEFAULT_ANSWER_ROOM`, but never more
   than half the context.
2. If the prompt does not fit the rest, the oldest turns of the conversation are dropped
   first (a user turn with the assistant turn after it), never the system text or the
   last turn.
3. If it still does not fit, the middle of the longest remaining text (the last turn, or
   the system text) is cut and replaced by a marker, keeping its beginning (a document's
   title and opening) and its end (where the question usually is).
4. One warning line on stderr says how big the prompt was, what was dropped and what was
   cut; if not even a few tokens of the last turn fit, it is an error (exit 65) instead.

Token counts come from the caller: the model's own tokenizer for a local model, a
server's tokenize endpoint, or `estimate_tokens`, which errs high, for a server without one.

Warnings go through `llmtools.notices` (`tell`, `notices_to` live there; the names are
imported here too only for callers that predate the move).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from llmtools.errors import InputError
from llmtools.notices import notices_to, tell  # noqa: F401 - the old import path, see above
from llmtools.stack import content_text

DEFAULT_ANSWER_ROOM = 512
MIN_USEFUL_TOKENS = 16  # less than this of the last turn left is not worth sending
CUT_MARKER = "\n\n[... {chars} characters cut here to fit the model's context ...]\n\n"
# Passes of cutting before giving up: each pass cuts at least the excess, so a handful
# suffice; the bound only guards against a tokenizer that counts a cut text as longer.
MAX_CUT_PASSES = 64

CountMessages = Callable[[list[dict]], int]
CountText = Callable[[str], int]


def estimate_tokens(text: str) -> int:
    """A token count that errs high: ~4 bytes a token is usual for English, 3 leaves a margin."""
    return -(-len(text.encode("utf-8")) // 3)


@dataclasses.dataclass
class Fitted:
    messages: list[dict]
    prompt_tokens: int
    warning: str | None = None


def answer_room(context_size: int, max_tokens: int | None) -> int:
    return max(1, min(max_tokens or DEFAULT_ANSWER_ROOM, context_size // 2))


def _with_text(message: dict, text: str) -> dict:
    content = message["content"]
    if isinstance(content, str):
        return {**message, "content": text}
    # A message with parts: keep the images, replace the text by one text part.
    others = [part for part in content if part.get("type") != "text"]
    return {**message, "content": [{"type": "text", "text": text}, *others]}


@dataclasses.dataclass
class _Dropped:
    turns: list[dict]  # what is left
    messages: int  # how many were dropped
    tokens: int  # what they cost
    total: int  # the prompt's tokens without them


def _drop_oldest_turns(system: list[dict], turns: list[dict], total: int, budget: int,
                       count_messages: CountMessages) -> _Dropped:
    """Drop the oldest turns (a user turn with the assistant turn after it) until the prompt
    fits or only the last turn is left."""
    dropped = _Dropped(turns, 0, 0, total)
    while dropped.total > budget and len(dropped.turns) > 1:
        take = 2 if len(dropped.turns) > 2 and dropped.turns[1]["role"] == "assistant" else 1
        dropped.turns = dropped.turns[take:]
        dropped.messages += take
        now = count_messages(system + dropped.turns)
        dropped.tokens += dropped.total - now
        dropped.total = now
    return dropped


class _MiddleCuts:
    """Cutting the middle out of the longest texts (the system text, the last turn).

    Each cut starts from the original text, so a message carries one marker however many
    passes it took, and keeps the head (a document's title and opening) and the tail
    (where the question usually is) in equal measure.
    """

    def __init__(self, items: list[dict], candidates: list[int], count_text: CountText) -> None:
        self.items = items
        self.originals = {index: content_text(items[index]["content"]) for index in candidates}
        self.candidates = [index for index in candidates if self.originals[index]]
        self.sizes = {index: count_text(self.originals[index]) for index in self.candidates}
        self.keep = dict(self.sizes)  # tokens of each original to keep
        self.kept_chars = {index: len(self.originals[index]) for index in self.candidates}
        self.marker_cost = count_text(CUT_MARKER.format(chars=10**6))

    def shrink(self, total: int, budget: int, count_messages: CountMessages) -> int:
        """Cut until the prompt fits or nothing is left to cut; the prompt's tokens after."""
        for _ in range(MAX_CUT_PASSES):
            if total <= budget:
                break
            shrinkable = [index for index in self.candidates if self.keep[index] > MIN_USEFUL_TOKENS]
            if not shrinkable:
                break
            self._cut(max(shrinkable, key=lambda index: self.keep[index]), total - budget)
            total = count_messages(self.items)
        return total

    def _cut(self, target: int, over: int) -> None:
        first_cut = self.keep[target] == self.sizes[target]
        self.keep[target] = max(MIN_USEFUL_TOKENS,
                                self.keep[target] - over - (self.marker_cost if first_cut else 0))
        text = self.originals[target]
        kept = int(len(text) * self.keep[target] / max(self.sizes[target], 1))
        self.kept_chars[target] = kept
        head = text[: (kept + 1) // 2]
        tail = text[len(text) - kept // 2:] if kept // 2 else ""
        self.items[target] = _with_text(self.items[target],
                                        head + CUT_MARKER.format(chars=len(text) - kept) + tail)

    def summary(self) -> str | None:
        """What was cut, as the warning says it; None if nothing was."""
        chars = sum(len(self.originals[index]) - self.kept_chars[index] for index in self.candidates)
        if not chars:
            return None
        tokens = sum(self.sizes[index] - self.keep[index] for index in self.candidates)
        several = sum(self.keep[index] < self.sizes[index] for index in self.candidates) > 1
        return (f"cut {chars} characters (about {tokens} tokens) from the middle of the longest "
                f"message{'s' if several else ''}")


def fit_messages(
    messages: list[dict],
    *,
    context_size: int,
    room: int,
    count_messages: CountMessages,
    count_text: CountText,
    model_name: str,
    estimated: bool = False,
) -> Fitted:
    """Return the messages (system first, then alternating turns) cut down to fit.

    `estimated` says the counts are estimates, so the warning says "about".
    """
    about = "about " if estimated else ""
    budget = context_size - room
    original = count_messages(messages)
    if original <= budget:
        return Fitted(messages, original)
    system = [dict(messages[0])] if messages and messages[0]["role"] == "system" else []
    dropped = _drop_oldest_turns(system, [dict(message) for message in messages[len(system):]],
                                 original, budget, count_messages)
    items = system + dropped.turns
    cuts = _MiddleCuts(items, sorted({0, len(items) - 1} if system else {len(items) - 1}), count_text)
    total = cuts.shrink(dropped.total, budget, count_messages)
    if total > budget:
        raise InputError(
            f"the prompt does not fit model {model_name}'s {context_size}-token context: it is "
            f"{about}{original} tokens and {room} are kept for the answer; even with earlier "
            f"messages dropped and the longest texts cut to {MIN_USEFUL_TOKENS} tokens, {about}"
            f"{total} remain (use a model with a larger context, a smaller --max-tokens, or send less)")
    what = []
    if dropped.messages:
        what.append(f"dropped the {dropped.messages} oldest message{'s' if dropped.messages != 1 else ''} "
                    f"({about}{dropped.tokens} tokens)")
    cut = cuts.summary()
    if cut:
        what.append(cut)
    warning = (f"the prompt ({about}{original} tokens) does not fit model {model_name}'s "
               f"{context_size}-token context with {room} tokens kept for the answer: "
               + " and ".join(what) + f"; {about}{total} tokens sent")
    return Fitted(cuts.items, total, warning)
