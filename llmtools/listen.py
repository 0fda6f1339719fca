"""The core of `llm --listen FIFO`: requests read from a named pipe, one after another.

Framing (what one request is):

- JSON lines that are messages collect into a stack; an empty line ends it, and so does
  the moment every writer has closed the FIFO (end of file).
- A line of plain text is a prompt: it joins the stack collected so far (if any) as the
  last user message and ends the request. So `echo "why?" > FIFO` asks one question, and
  `{ llm-fetch URL; echo "summarise"; } > FIFO` asks about the page.
- A line cut short by a writer that died mid-line (end of file with no newline) is
  reported and never answered; nor is a stack that contains a malformed line.

Writers and atomicity: a FIFO's writes of at most PIPE_BUF bytes (4096 on Linux) are
atomic, so writers running at once never interleave as long as each sends its whole
request, ending in a newline (an empty line after a stack), in one write(2) of at most
4096 bytes. One request per `open`/`close` with no other writer open at the same time
works at any size; larger requests from writers that may overlap need a lock of the
writers' own (e.g. `flock /tmp/fifo.lock sh -c 'cat big.jsonl > FIFO'`).

After end of file the FIFO is opened again, for the next writer; nothing here ends the
loop but a signal (SIGTERM ends it between or during answers, see the command).
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

from llmtools import detect, stack
from llmtools.errors import InputError, UsageError

PIPE_BUF = 4096
Report = Callable[[str], None]


def check_fifo(path: str) -> Path:
    """`path` as a FIFO, created (0600) if nothing is there; a usage error if something else is."""
    fifo = Path(path)
    try:
        mode = fifo.stat().st_mode
    except FileNotFoundError:
        os.mkfifo(fifo, 0o600)
        return fifo
    if not stat.S_ISFIFO(mode):
        raise UsageError(f"{path} is not a named pipe (make one with mkfifo)")
    return fifo


class Framer:
    """Complete lines in, requests (lists of messages) out, following the rules above."""

    def __init__(self, report: Report, source: str) -> None:
        self.report = report
        self.source = source
        self.messages: list[dict] = []
        self.broken = False
        self.line_number = 0

    def line(self, raw: bytes) -> Iterator[list[dict]]:
        self.line_number += 1
        try:
            text = raw.decode("utf-8").removesuffix("\r")
        except UnicodeDecodeError:
            self._broken("not UTF-8")
            return
        if not text.strip():
            yield from self.end()
            return
        if detect.looks_like_stack(text):
            try:
                self.messages.append(stack.parse_stack(text, source=self.source)[0])
            except InputError as error:
                self._broken(str(error).removeprefix(f"{self.source} line 1: "))
            return
        problem = _json_problem(text) if text.lstrip().startswith("{") else None
        if problem:
            self._broken(problem)
            return
        self.messages.append(stack.message("user", text))
        yield from self.end()

    def _broken(self, why: str) -> None:
        self.report(f"{self.source} line {self.line_number}: {why}; this request is dropped")
        self.broken = True

    def end(self) -> Iterator[list[dict]]:
        """The request collected so far is complete (an empty line, a prompt, end of file)."""
        messages, broken = self.messages, self.broken
        self.messages, self.broken = [], False
        if messages and not broken:
            yield messages


def _json_problem(text: str) -> str | None:
    """What is wrong with a `{` line that is not a message; None if it is just text."""
    try:
        value = json.loads(text)
    except ValueError as error:  # a broken message, not a prompt that happens to start with {
        return f"not valid JSON ({error.msg if isinstance(error, json.JSONDecodeError) else error})"
    if isinstance(value, dict):
        return 'not a message (a JSON object needs "role" and "content")'
    return None


def requests(fifo: Path, report: Report) -> Iterator[list[dict]]:
    """Requests as they arrive on `fifo`, forever; reopened whenever all writers have gone."""
    framer = Framer(report, str(fifo))
    while True:
        pending = b""
        with open(fifo, "rb") as reader:  # blocks until a writer opens it
            # Each line as soon as its newline arrives; a long line (a base64 image) is
            # gathered by the buffered reader, not re-split chunk by chunk.
            for line in reader:
                if not line.endswith(b"\n"):
                    pending = line  # the last writer closed mid-line
                    break
                yield from framer.line(line[:-1])
        if pending.strip():
            framer.line_number += 1
            shown = pending[:60].decode("utf-8", "replace")
            report(f"{fifo}: a writer left a partial line ({len(pending)} bytes, {shown!r}...) "
                   "and closed; it is not answered")
            framer.broken = True
        yield from framer.end()
