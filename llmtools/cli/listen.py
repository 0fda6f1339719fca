"""`llm --listen FIFO [--out FIFO2]`: answer requests from a named pipe until SIGTERM.

The options are added to `llm prompt` by `listen_options`; the rest of `llm`'s options
(-m, -s, -p, -t, -S, -n, ...) apply to every request. Framing and the writers' side are
in `llmtools.listen`; see llm(1), LISTENING.
"""

from __future__ import annotations

import contextlib
import functools
import signal

import click

from llmtools.cli.output import AnswerFormat, write_raw


def listen_options(function):
    """--listen and --out on a command whose other options are `llm prompt`'s."""
    @functools.wraps(function)
    def listen_or_prompt(*args, listen: str | None, out: str | None, **kwargs):
        if listen is None:
            if out is not None:
                from llmtools.errors import UsageError

                raise UsageError("--out goes with --listen FIFO")
            return function(*args, **kwargs)
        return serve(listen, out, **kwargs)

    listen_or_prompt = click.option(
        "--out", metavar="FIFO2", help="With --listen: write each answer to this named pipe, not stdout.")(
        listen_or_prompt)
    return click.option(
        "--listen", metavar="FIFO",
        help="Answer each request written to this named pipe (created if missing), until SIGTERM.")(
        listen_or_prompt)


def serve(fifo: str, out: str | None, *, prompt, model, temperature, max_tokens, thinking, model_timeout,
          system, paths, context, answer_format: AnswerFormat, continue_last, cid, no_log, profile,
          retry: bool = False, url_timeout: float | None = None, no_ignore: bool = False, no_map: bool = False,
          strict: bool = False) -> None:
    """Answer every request arriving on `fifo`, each written whole once it is complete."""
    from llmtools import ask, listen
    from llmtools.errors import LlmtoolsError, UsageError
    from llmtools.notices import warn

    if prompt or continue_last or cid or retry:
        raise UsageError("--listen takes its prompts from the pipe (no PROMPT, -c, --cid or --retry)")
    source = listen.check_fifo(fifo)
    for messages in listen.requests(source, warn):
        try:
            prepared = ask.prepare(
                ask.PromptParts(system=system, paths=list(paths), context=list(context), stdin_messages=messages,
                                url_timeout=url_timeout, use_ignore_files=not no_ignore),
                model=model, timeout=model_timeout, temperature=temperature, max_tokens=max_tokens,
                thinking=thinking)
            for warning in prepared.warnings:
                warn(warning)
            text = _answer(prepared, answer_format, log=not no_log, no_map=no_map, strict=strict,
                           profile=profile)
        except LlmtoolsError as error:
            warn(f"request not answered: {' '.join(str(error).split())}")
            continue
        _deliver(text, out)


class _Collected:
    """A display that keeps the answer to deliver whole: the text as it streams, the stack
    it closes with. Thinking is not delivered."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.messages: list[dict] | None = None

    def thinking(self, text: str) -> None:
        pass

    def end_thinking(self) -> None:
        pass

    def text(self, text: str) -> None:
        self.parts.append(text)

    def end_line(self) -> None:
        pass

    def close(self, messages: list[dict] | None = None) -> None:
        self.messages = messages


def _answer(prepared, answer_format: AnswerFormat, *, log: bool, no_map: bool, strict: bool,
            profile: bool) -> str:
    """The whole answer (text, or the stack and an empty line that ends it for the next reader),
    got as `llm` gets one (cli.answering)."""
    from llmtools import stack
    from llmtools.cli.answering import answer_prepared

    collected = _Collected()
    answer_prepared(prepared, lambda: collected, tool="llm --listen", log=log, no_map=no_map, strict=strict,
                    profile=profile)
    messages = collected.messages
    if answer_format.stack:
        return "".join(stack.dumps(msg) + "\n" for msg in messages or prepared.request.messages) + "\n"
    text = stack.content_text(messages[-1]["content"]) if messages else "".join(collected.parts)
    return text if text.endswith("\n") else text + "\n"


def _deliver(text: str, out: str | None) -> None:
    """Written whole: SIGTERM waits until the answer is out, so no reader gets half of one.
    (Waiting for a reader of FIFO2 to come is not held up: SIGTERM ends that wait.)"""
    if out is None:
        with _sigterm_held():
            write_raw(text)
        return
    # One open/write/close per answer: a reader of FIFO2 sees each as it comes, and may come and go.
    with open(out, "w", encoding="utf-8") as pipe, _sigterm_held():
        pipe.write(text)
        pipe.flush()


@contextlib.contextmanager
def _sigterm_held():
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)



