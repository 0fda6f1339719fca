"""The one layer that writes stdout (and reads stdin).

Answers (llm, llm-exec, llm-bind, llm-compare) are text by default and the whole stack
with -S; content (llm-fetch, llm-pdf, llm-buffer) is a stack unless stdout is a
terminal or `-o text` is given. A terminal gets Markdown rendered; a pipe gets the
raw text, flushed as it streams so the next command sees it at once.

Every write here turns BrokenPipeError into `ReaderGone`, so a reader that leaves
early (`| head -1`) ends the command quietly with status 141 wherever it happens.
"""

from __future__ import annotations

import contextlib
import sys
from typing import IO

import click

from llmtools import stack
from llmtools.errors import ReaderGone

OUTPUT_FORMATS = ("text", "jsonl")


@contextlib.contextmanager
def _reader_may_leave():
    try:
        yield
    except BrokenPipeError:
        raise ReaderGone("stdout closed by its reader") from None


def stdin_is_piped() -> bool:
    """True unless stdin is a terminal or closed: a pipe, a file or /dev/null."""
    try:
        return sys.stdin is not None and not sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False


def read_stdin_messages() -> list[dict]:
    """stdin as messages (a stack, text, an image or a PDF); none from a terminal."""
    return stack.read_stack(sys.stdin.buffer) if stdin_is_piped() else []


def stdout_is_terminal() -> bool:
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


def output_option(default_help: str):
    return click.option(
        "-o", "--output", "output_format", type=click.Choice(OUTPUT_FORMATS),
        help=f"Output format. {default_help}")


def echo(line: str = "") -> None:
    """Write one line of data (listings such as `llm logs`)."""
    with _reader_may_leave():
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def write_stack(messages: list[dict]) -> None:
    with _reader_may_leave():
        stack.write_stack(messages, sys.stdout)


class TextWriter:
    """Streams answer text to stdout: rendered on a terminal, raw otherwise."""

    def __init__(self, out: IO[str] | None = None, *, markdown: bool | None = None) -> None:
        self.out = out or sys.stdout
        if markdown is None:
            markdown = stdout_is_terminal()
        self.renderer = None
        if markdown:
            from llmtools.render import MarkdownStream

            self.renderer = MarkdownStream(self.out)
        self.last_char = "\n"
        self.wrote = False

    def write(self, text: str) -> None:
        if not text:
            return
        self.wrote = True
        self.last_char = text[-1]
        with _reader_may_leave():
            if self.renderer is not None:
                self.renderer.feed(text)
            else:
                self.out.write(text)
                self.out.flush()

    def close(self) -> None:
        """End with a newline so the shell prompt (or the next line of a file) starts clean."""
        with _reader_may_leave():
            if self.renderer is not None:
                self.renderer.close()
            elif self.wrote and self.last_char != "\n":
                self.out.write("\n")
                self.out.flush()


def write_messages(messages: list[dict], output_format: str | None, *, content_default: bool) -> None:
    """Write messages in the format asked for.

    `content_default` is True for commands whose product is content: they write a stack
    unless stdout is a terminal. Text output joins the messages' text.
    """
    if output_format is None:
        output_format = "text" if (not content_default or stdout_is_terminal()) else "jsonl"
    if output_format == "jsonl":
        write_stack(messages)
        return
    writer = TextWriter()
    for index, msg in enumerate(messages):
        if index:
            writer.write("\n")
        writer.write(stack.text_of(msg))
        if writer.last_char != "\n":
            writer.write("\n")
    writer.close()
