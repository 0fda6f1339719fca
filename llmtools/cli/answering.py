"""Answering a prepared request, the one way `llm` and `llm --listen` share: a prompt too long
for the model's context is read in chunks (as llm-map does), anything else is one exchange;
an answer cut off by the token limit is warned about, and --profile adds its line."""

from __future__ import annotations

import sys
from collections.abc import Callable


def answer_prepared(prepared, make_display: Callable, *, tool: str, log: bool, no_map: bool, strict: bool,
                    profile: bool) -> None:
    """Stream the answer to `prepared` (ask.Prepared) into the display `make_display()` gives
    (an AnswerWriter, or anything with its text/thinking/close), closed with the stack however
    the answer ends. The display is made only once the request is under way, so a spinner
    starts no sooner than it used to."""
    from llmtools.mapping.overflow import overflow_to_map

    found = overflow_to_map(prepared.spec, prepared.request, no_map=no_map, strict=strict)
    if found is not None:
        _answer_mapped(prepared, found, make_display(), tool=tool, log=log)
        return
    from llmtools.exchange import Exchange
    from llmtools.notices import warn

    exchange = Exchange(prepared.spec, prepared.request, tool=tool,
                        conversation_id=prepared.conversation_id, log=log)
    display = make_display()
    try:
        exchange.show(display)
    finally:
        # Whatever ends the stream (done, Ctrl-C, a cut connection), what arrived is kept:
        # the text is already out; a stack is written with the partial answer marked.
        outcome = exchange.outcome
        worth_a_stack = outcome.text or outcome.status == "ok"
        display.close([*prepared.request.messages, exchange.assistant_message()] if worth_a_stack else None)
        if cut := exchange.truncation_warning():
            warn(cut)
        if profile:
            print(_profile_line(exchange), file=sys.stderr, flush=True)


def _answer_mapped(prepared, found, display, *, tool: str, log: bool) -> None:
    """Read an overflowing prompt in chunks, as llm-map does (strategy auto), and answer."""
    from llmtools.mapping.overflow import answer_overflowing

    message = None
    try:
        message = answer_overflowing(prepared.spec, prepared.request, found, tool=tool, log=log,
                                     conversation_id=prepared.conversation_id, stream_to=display.text)
    finally:
        display.close([*prepared.request.messages, message] if message else None)


def _profile_line(exchange) -> str:
    from llmtools.profile import profile_line

    return profile_line(exchange.outcome, exchange.spec.name)
