"""Markdown for a terminal, rendered line by line as an answer streams in.

Only used when stdout is a terminal; a pipe or file always gets the raw text. The
rendering is deliberately modest (headings, emphasis, code, lists, quotes): it must
never hold text back for long, and it must never change what the words are.
"""

from __future__ import annotations

import re
from typing import IO

BOLD, DIM, ITALIC, UNDERLINE, RESET = "\x1b[1m", "\x1b[2m", "\x1b[3m", "\x1b[4m", "\x1b[0m"
CYAN, MAGENTA, YELLOW = "\x1b[36m", "\x1b[35m", "\x1b[33m"

_INLINE_CODE = re.compile(r"`([^`\n]+)`")
_BOLD = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*")
_ITALIC = re.compile(r"(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])")
_LINK = re.compile(r"\[([^\]\n]+)\]\(([^)\s]+)\)")
_HEADING = re.compile(r"^(#{1,6})\s+(.*)$")
_BULLET = re.compile(r"^(\s*)[-*+]\s+(.*)$")
_FENCE = re.compile(r"^\s*(```|~~~)")


def render_inline(text: str) -> str:
    # Code spans first, and kept out of the other rules, so `a*b*c` stays as written.
    pieces = _INLINE_CODE.split(text)
    out = []
    for index, piece in enumerate(pieces):
        if index % 2:
            out.append(f"{CYAN}{piece}{RESET}")
            continue
        piece = _LINK.sub(lambda m: f"{UNDERLINE}{m.group(1)}{RESET} {DIM}({m.group(2)}){RESET}", piece)
        piece = _BOLD.sub(lambda m: f"{BOLD}{m.group(1)}{RESET}", piece)
        piece = _ITALIC.sub(lambda m: f"{ITALIC}{m.group(1)}{RESET}", piece)
        out.append(piece)
    return "".join(out)


class MarkdownStream:
    """Feed text as it streams; complete lines are rendered and written at once."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self.pending = ""
        self.in_code = False

    def feed(self, text: str) -> None:
        self.pending += text
        while "\n" in self.pending:
            line, self.pending = self.pending.split("\n", 1)
            self.out.write(self.render_line(line) + "\n")
        self.out.flush()

    def close(self) -> None:
        if self.pending:
            self.out.write(self.render_line(self.pending) + "\n")
            self.pending = ""
        self.out.flush()

    def render_line(self, line: str) -> str:
        if _FENCE.match(line):
            self.in_code = not self.in_code
            return f"{DIM}{line}{RESET}"
        if self.in_code:
            return f"{YELLOW}{line}{RESET}"
        heading = _HEADING.match(line)
        if heading:
            return f"{BOLD}{MAGENTA}{heading.group(2)}{RESET}"
        bullet = _BULLET.match(line)
        if bullet:
            return f"{bullet.group(1)}• {render_inline(bullet.group(2))}"
        if line.startswith(">"):
            return f"{DIM}│{RESET} {ITALIC}{render_inline(line[1:].lstrip())}{RESET}"
        if re.fullmatch(r"\s*([-*_])(\s*\1){2,}\s*", line):
            return f"{DIM}{'─' * 40}{RESET}"
        return render_inline(line)
