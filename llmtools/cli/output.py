"""The one layer that writes stdout (and reads stdin), for both kinds of product.

Answers (llm, llm-exec, llm-bind, llm-compare) are text by default and the whole stack
with -S: `AnswerWriter`. Content (llm-fetch, llm-pdf, llm-buffer) is a stack unless
stdout is a terminal or `-o text` is given: `write_content`. Text on a terminal is
rendered Markdown, shown as it arrives (see `llmtools.render`), unless `--raw`,
NO_COLOR or TERM=dumb says otherwise (see `llmtools.terminal`); a pipe gets the raw
text, flushed as it streams so the next command sees it at once.

Every write here turns BrokenPipeError into `ReaderGone`, so a reader that leaves
early (`| head -1`) ends the command quietly with status 141 wherever it happens.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterable
from typing import IO, NamedTuple

from llmtools.errors import LlmtoolsError, ReaderGone
from llmtools.terminal import Spinner, is_terminal, may_style, write_stderr

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


EMPTY_PIPE_WARNING = ("stdin was empty: did the command before this one in the pipe fail? "
                      "(`set -o pipefail` makes the shell report it)")


def _empty_pipe() -> bool:
    """stdin is a pipe that closed with nothing in it (a failed first stage, most often)."""
    import os
    import stat

    try:
        if not stat.S_ISFIFO(os.fstat(sys.stdin.fileno()).st_mode):
            return False
        return not sys.stdin.buffer.peek(1)  # type: ignore[union-attr]  # a BufferedReader
    except (AttributeError, OSError, ValueError):
        return False


def terminal_columns() -> int:
    """The width `shutil.get_terminal_size` gives (COLUMNS, else the terminal on stdout,
    else 80), found without importing shutil, which pulls in bz2, lzma and fnmatch."""
    import os

    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns > 0:
        return columns
    try:
        return os.get_terminal_size(sys.__stdout__.fileno()).columns or 80  # type: ignore[union-attr]
    except (AttributeError, ValueError, OSError):
        return 80


def read_stdin_messages() -> list[dict]:
    """stdin as messages (a stack, text, an image or a PDF); none from a terminal.

    An empty pipe is worth a warning: `llm -m down -S a | llm -S b` would otherwise ask
    "b" alone, with status 0. /dev/null and empty files are taken as meant."""
    if not stdin_is_piped():
        return []
    if _empty_pipe():
        from llmtools.notices import warn

        warn(EMPTY_PIPE_WARNING)
        return []
    from llmtools import stack  # here: `--help` and option parsing import this module

    return stack.read_stack(sys.stdin.buffer)


def read_stdin_lines() -> list[str]:
    """stdin's lines when it is piped (a list of URLs, names...); none from a terminal."""
    return sys.stdin.read().splitlines() if stdin_is_piped() else []


def read_stdin_bytes() -> bytes:
    """All of stdin, as bytes (a PDF named "-")."""
    return sys.stdin.buffer.read()


def stdout_is_terminal() -> bool:
    return is_terminal(sys.stdout)


def renders_markdown(raw: bool) -> bool:
    """Whether text on stdout is rendered: a terminal that may be styled, and no --raw."""
    return not raw and may_style(sys.stdout)


def echo(line: str = "") -> None:
    """Write one line of data (listings such as `llm logs`)."""
    write_raw(line + "\n")


def write_raw(text: str) -> None:
    """Write text exactly as it is (what a runtime printed, say), flushed."""
    with _reader_may_leave():
        sys.stdout.write(text)
        sys.stdout.flush()


def write_stack(messages: list[dict]) -> None:
    with _reader_may_leave():
        from llmtools.stack import write_stack as write_messages

        write_messages(messages, sys.stdout)


class TextWriter:
    """Streams text to stdout: rendered Markdown on a terminal that may be styled, raw otherwise."""

    def __init__(self, out: IO[str] | None = None, *, markdown: bool | None = None) -> None:
        self.out = out or sys.stdout
        if markdown is None:
            markdown = renders_markdown(raw=False)
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

    def end_line(self) -> None:
        """Finish a line left open, so what follows starts at the beginning of one."""
        if self.wrote and self.last_char != "\n":
            self.write("\n")

    def close(self) -> None:
        """End with a newline so the shell prompt (or the next line of a file) starts clean."""
        with _reader_may_leave():
            if self.renderer is not None:
                self.renderer.close()
            elif self.wrote and self.last_char != "\n":
                self.out.write("\n")
                self.out.flush()


# --- answers ---------------------------------------------------------------------------


class AnswerFormat(NamedTuple):
    """What the answer options (-S, -o, --raw) asked for. (A NamedTuple: `dataclasses`
    would be the one import `--help` pays for it.)"""

    stack: bool = False
    raw: bool = False

    @classmethod
    def from_options(cls, as_stack: bool, output_format: str | None, raw: bool) -> AnswerFormat:
        return cls(stack=as_stack or output_format == "jsonl", raw=raw)


class AnswerWriter:
    """An answer as it streams: text to stdout, thinking to stderr, or the stack at the end.

    Thinking is shown dimmed on stderr and ended with a newline once anything else comes
    (`show_thinking=False` keeps it off the screen, as llm-exec's -q does). A spinner on
    stderr fills the wait before the first token.
    """

    def __init__(self, answer_format: AnswerFormat, *, show_thinking: bool = True) -> None:
        self.answer_format = answer_format
        self.show_thinking = show_thinking
        self.text_writer = None if answer_format.stack else TextWriter(
            markdown=renders_markdown(answer_format.raw))
        self.thinking_open = False
        self.spinner = Spinner.start_if_watched()

    def thinking(self, text: str) -> None:
        self.spinner.stop()
        if self.show_thinking and text:
            write_stderr(text, dim=True)
            self.thinking_open = True

    def end_thinking(self) -> None:
        """Something other than thinking arrived: thinking's last line ends here."""
        self.spinner.stop()
        if self.thinking_open:
            write_stderr("\n")
            self.thinking_open = False

    def text(self, text: str) -> None:
        self.end_thinking()
        if self.text_writer is not None:
            self.text_writer.write(text)

    def end_line(self) -> None:
        """The text's current line ends (llm-exec: where a code block begins)."""
        if self.text_writer is not None:
            self.text_writer.end_line()

    def close(self, messages: list[dict] | None = None) -> None:
        """End the text, or with -S write `messages` (None: nothing worth writing arrived)."""
        self.end_thinking()
        if self.text_writer is not None:
            self.text_writer.close()
        elif messages is not None:
            write_stack(messages)


# --- content -----------------------------------------------------------------------------


def report_error(error: LlmtoolsError) -> None:
    """One error among several results: a line on stderr, and the others still come out."""
    from llmtools.cli.main import error_line
    from llmtools.notices import program_name

    sys.stderr.write(error_line(program_name(), str(error)) + "\n")
    sys.stderr.flush()


def write_content(results: Iterable[dict | LlmtoolsError], output_format: str | None, *,
                  raw: bool, text_of: Callable[[dict], str] | None = None) -> int:
    """Write each message as soon as it is ready, report each error; return the worst status.

    `results` yields a message, or the error that stood in its place. Text output puts a
    blank line between messages, each shown by `text_of` (default: `stack.text_of`).
    """
    from llmtools.errors import ExitStatus, worst_status

    if text_of is None:
        from llmtools import stack

        text_of = stack.text_of

    if output_format is None:
        output_format = "text" if stdout_is_terminal() else "jsonl"
    writer = TextWriter(markdown=renders_markdown(raw)) if output_format == "text" else None
    statuses: list[ExitStatus] = []
    try:
        for result in results:
            if isinstance(result, LlmtoolsError):
                statuses.append(result.status)
                report_error(result)
            elif writer is None:
                statuses.append(ExitStatus.OK)
                write_stack([result])  # each goes out at once, so a pipeline can start on it
            else:
                statuses.append(ExitStatus.OK)
                if writer.wrote:
                    writer.write("\n")
                writer.write(text_of(result))
                writer.end_line()
    finally:
        if writer is not None:
            writer.close()
    return worst_status(statuses)


def read_line() -> str:
    """One line of stdin without its newline; EOFError at the end (chat from a pipe)."""
    line = sys.stdin.readline()
    if not line:
        raise EOFError
    return line.removesuffix("\n")
