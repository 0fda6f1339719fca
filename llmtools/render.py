"""Markdown for a terminal, shown as an answer streams in and styled line by line.

Only used when stdout is a terminal that may be styled (see `llmtools.terminal`); a
pipe, a file, `--raw`, `NO_COLOR` and `TERM=dumb` get the raw text. The rendering is
deliberately modest (headings, emphasis, code, lists, quotes) and never changes what
the words are.

Text appears the moment it arrives: a partial line is written raw at once, because a
line's styling cannot be known before it ends (`**` may close later). When the line
completes, the cursor goes back to its start and the line is redrawn styled. A line
that needs no styling, or arrives whole, is written once.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from typing import IO

BOLD, DIM, ITALIC, UNDERLINE, RESET = "\x1b[1m", "\x1b[2m", "\x1b[3m", "\x1b[4m", "\x1b[0m"
CYAN, MAGENTA, YELLOW = "\x1b[36m", "\x1b[35m", "\x1b[33m"
ERASE_TO_END_OF_SCREEN = "\x1b[J"

_INLINE_CODE = re.compile(r"`([^`\n]+)`")
_BOLD = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*")
_ITALIC = re.compile(r"(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])")
_LINK = re.compile(r"\[([^\]\n]+)\]\(([^)\s]+)\)")
_HEADING = re.compile(r"^(#{1,6})\s+(.*)$")
_BULLET = re.compile(r"^(\s*)[-*+]\s+(.*)$")
_FENCE = re.compile(r"^\s*(```|~~~)")
_RULE = re.compile(r"\s*([-*_])(\s*\1){2,}\s*")

TAB_STOP = 8


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


def display_width(text: str) -> int:
    """Terminal columns `text` takes: wide East Asian characters count two, combining marks none."""
    width = 0
    for char in text:
        if char == "\t":
            width += TAB_STOP - width % TAB_STOP
        elif char < " " or unicodedata.combining(char):
            continue
        elif unicodedata.east_asian_width(char) in ("W", "F"):
            width += 2
        else:
            width += 1
    return width


def _terminal_size_of(out: IO[str]) -> Callable[[], tuple[int, int]]:
    import os

    def size() -> tuple[int, int]:
        try:
            columns, lines = os.get_terminal_size(out.fileno())
        except (AttributeError, OSError, ValueError):
            return 80, 24
        return columns or 80, lines or 24

    return size


class MarkdownStream:
    """Feed text as it streams; it is shown at once and styled when its line completes.

    `terminal_size` gives (columns, lines); it is asked on every redraw so a resized
    window is measured as it is now.
    """

    def __init__(self, out: IO[str], *, terminal_size: Callable[[], tuple[int, int]] | None = None) -> None:
        self.out = out
        self.terminal_size = terminal_size or _terminal_size_of(out)
        self.shown = ""  # the current line's text, already on screen unstyled
        self.in_code = False

    def feed(self, text: str) -> None:
        *complete, partial = text.split("\n")
        for line in complete:
            self._finish_line(self.shown + line)
            self.shown = ""
        if partial:
            self.out.write(partial)
            self.shown += partial
        self.out.flush()

    def close(self) -> None:
        if self.shown:
            self._finish_line(self.shown)
            self.shown = ""
        self.out.flush()

    def _finish_line(self, line: str) -> None:
        styled = self.render_line(line)
        if not self.shown:
            self.out.write(styled + "\n")
        else:
            self.out.write(self._redraw(line, styled) + "\n")

    def _redraw(self, line: str, styled: str) -> str:
        """What turns the raw start already shown (`self.shown`) into the whole styled line."""
        rest = line[len(self.shown):]
        if styled == line:
            return rest
        columns, lines = self.terminal_size()
        # Rows the shown part wrapped onto. One that fills its last row exactly leaves the
        # cursor on that row (the wrap happens with the next character), hence the -1.
        rows_up = max(display_width(self.shown) - 1, 0) // max(columns, 1)
        if rows_up >= lines:
            return rest  # its start has scrolled off the screen: leave it unstyled
        climb = f"\x1b[{rows_up}A" if rows_up else ""
        return climb + "\r" + ERASE_TO_END_OF_SCREEN + styled

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
        if _RULE.fullmatch(line):
            return f"{DIM}{'─' * 40}{RESET}"
        return render_inline(line)
