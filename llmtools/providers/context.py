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
server's tokenize endpoint or a conservative estimate for a server.

Warnings and notices from providers (a prompt cut, a model being pulled) go through
`tell`: to stderr by default, or, inside `with notices_to(callback):` in the same thread,
to `callback(level, message)` (level "warning" or "note"), which is how a daemon hands
them to the client whose request caused them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from collections.abc import Callable, Iterator

from llmtools.errors import InputError

DEFAULT_ANSWER_ROOM = 512
MIN_USEFUL_TOKENS = 16  # less than this of the last turn left is not worth sending
CUT_MARKER = "\n\n[... {chars} characters cut here to fit the model's context ...]\n\n"

CountMessages = Callable[[list[dict]], int]
CountText = Callable[[str], int]


_sink = threading.local()


@contextlib.contextmanager
def notices_to(callback: Callable[[str, str], None]) -> Iterator[None]:
    """Send this thread's provider warnings and notices to `callback(level, message)`."""
    previous = getattr(_sink, "callback", None)
    _sink.callback = callback
    try:
        yield
    finally:
        _sink.callback = previous


def tell(level: str, message: str) -> None:
    callback = getattr(_sink, "callback", None)
    if callback is not None:
        callback(level, message)
        return
    from llmtools import notices

    (notices.warn if level == "warning" else notices.note)(message)


@dataclasses.dataclass
class Fitted:
    messages: list[dict]
    prompt_tokens: int
    warning: str | None = None


def answer_room(context_size: int, max_tokens: int | None) -> int:
    return max(1, min(max_tokens or DEFAULT_ANSWER_ROOM, context_size // 2))


def _text(content: str | list) -> str:
    if isinstance(content, str):
        return content
    return "\n".join(part.get("text", "") for part in content if part.get("type") == "text")


def _with_text(message: dict, text: str) -> dict:
    content = message["content"]
    if isinstance(content, str):
        return {**message, "content": text}
    # A message with parts: keep the images, replace the text by one text part.
    others = [part for part in content if part.get("type") != "text"]
    return {**message, "content": [{"type": "text", "text": text}, *others]}


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
    total = count_messages(messages)
    if total <= budget:
        return Fitted(messages, total)
    original = total
    system = [dict(messages[0])] if messages and messages[0]["role"] == "system" else []
    turns = [dict(message) for message in messages[len(system):]]

    dropped = dropped_tokens = 0
    while total > budget and len(turns) > 1:
        take = 2 if len(turns) > 2 and turns[1]["role"] == "assistant" else 1
        turns = turns[take:]
        dropped += take
        now = count_messages(system + turns)
        dropped_tokens += total - now
        total = now

    # Cut the middle of the longest text (the system text or the last turn), from its
    # original each time so there is one marker, shrinking until the prompt fits.
    items = system + turns
    candidates = [index for index in ({0, len(items) - 1} if system else {len(items) - 1})
                  if _text(items[index]["content"])]
    originals = {index: _text(items[index]["content"]) for index in candidates}
    sizes = {index: count_text(text) for index, text in originals.items()}
    keep = dict(sizes)  # tokens of each original to keep
    kept_chars = {index: len(text) for index, text in originals.items()}
    marker_cost = count_text(CUT_MARKER.format(chars=10**6))
    for _ in range(64):
        if total <= budget:
            break
        over = total - budget
        shrinkable = [index for index in candidates if keep[index] > MIN_USEFUL_TOKENS]
        if not shrinkable:
            break
        target = max(shrinkable, key=lambda index: keep[index])
        first_cut = keep[target] == sizes[target]
        keep[target] = max(MIN_USEFUL_TOKENS, keep[target] - over - (marker_cost if first_cut else 0))
        text = originals[target]
        kept = int(len(text) * keep[target] / max(sizes[target], 1))
        kept_chars[target] = kept
        head = text[: (kept + 1) // 2]
        tail = text[len(text) - kept // 2:] if kept // 2 else ""
        items[target] = _with_text(items[target], head + CUT_MARKER.format(chars=len(text) - kept) + tail)
        total = count_messages(items)
    if total > budget:
        raise InputError(
            f"the prompt does not fit model {model_name}'s {context_size}-token context: it is "
            f"{about}{original} tokens and {room} are kept for the answer; even with earlier "
            f"messages dropped and the longest texts cut to {MIN_USEFUL_TOKENS} tokens, {about}"
            f"{total} remain (use a model with a larger context, a smaller --max-tokens, or send less)")
    system, turns = items[: len(system)], items[len(system):]
    cut_chars = sum(len(originals[index]) - kept_chars[index] for index in candidates)
    cut_tokens = sum(sizes[index] - keep[index] for index in candidates)

    what = []
    if dropped:
        what.append(f"dropped the {dropped} oldest message{'s' if dropped != 1 else ''} "
                    f"({about}{dropped_tokens} tokens)")
    if cut_chars:
        what.append(f"cut {cut_chars} characters (about {cut_tokens} tokens) from the middle of "
                    f"the longest message" + ("s" if sum(keep[i] < sizes[i] for i in candidates) > 1
                                              else ""))
    warning = (f"the prompt ({about}{original} tokens) does not fit model {model_name}'s "
               f"{context_size}-token context with {room} tokens kept for the answer: "
               + " and ".join(what) + f"; {about}{total} tokens sent")
    return Fitted(system + turns, total, warning)
