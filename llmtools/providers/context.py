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

    cut_chars = cut_tokens = 0
    attempts = 0
    while total > budget:
        attempts += 1
        candidates = [message for message in (*system, turns[-1]) if _text(message["content"])]
        sizes = {id(message): count_text(_text(message["content"])) for message in candidates}
        target = max(candidates, key=lambda message: sizes[id(message)], default=None)
        over = total - budget
        if target is None or attempts > 8 or sizes[id(target)] - over < MIN_USEFUL_TOKENS:
            raise InputError(
                f"the prompt does not fit model {model_name}'s {context_size}-token context: "
                f"it is {about}{original} tokens and {room} are kept for the answer; even after dropping "
                f"earlier messages and cutting the longest text, {total} tokens remain "
                f"(use a model with a larger context, or send less)")
        text = _text(target["content"])
        tokens = sizes[id(target)]
        # Cut a little more than the overshoot: the marker costs tokens too, and a count
        # made on characters is only proportional on average.
        remove_tokens = over + 8 + over // 20
        keep_chars = max(0, int(len(text) * (tokens - remove_tokens) / max(tokens, 1)))
        removed = len(text) - keep_chars
        head = text[: (keep_chars + 1) // 2]
        tail = text[len(text) - keep_chars // 2:] if keep_chars // 2 else ""
        new_text = head + CUT_MARKER.format(chars=removed) + tail
        replacement = _with_text(target, new_text)
        if target is turns[-1]:
            turns[-1] = replacement
        else:
            system[0] = replacement
        cut_chars += removed
        before = total
        total = count_messages(system + turns)
        cut_tokens += max(0, before - total)

    what = []
    if dropped:
        what.append(f"dropped the {dropped} oldest message{'s' if dropped != 1 else ''} "
                    f"({about}{dropped_tokens} tokens)")
    if cut_chars:
        what.append(f"cut {cut_chars} characters (about {cut_tokens} tokens) from the middle of "
                    f"the longest message")
    warning = (f"the prompt ({about}{original} tokens) does not fit model {model_name}'s "
               f"{context_size}-token context with {room} tokens kept for the answer: "
               + " and ".join(what) + f"; {about}{total} tokens sent")
    return Fitted(system + turns, total, warning)
