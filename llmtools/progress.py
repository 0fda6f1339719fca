"""A progress bar on stderr for anything counted towards a total: bytes downloaded, pages read.

On a terminal one line is redrawn in place (at most ten times a second, and always at
the end); elsewhere (a log, a pipe) there is no bar, only the lines the caller asks for
with `note`, plus, with `log_every`, a line each time that fraction of the total is done.

    bar = CounterBar("report.pdf: OCR", unit=PAGES, log_every=0.1)
    bar.start(total)
    for page in pages:
        ...
        bar.advance()
    bar.finish()
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Callable
from typing import IO

from llmtools.terminal import ERASE_LINE, can_redraw, may_style

BAR_WIDTH = 30
REDRAW_INTERVAL_S = 0.1


@dataclasses.dataclass(frozen=True)
class Unit:
    """How a count is shown: "12.3/98.4 MB 5.0 MB/s" or "3/10 pages"."""

    scale: float  # counted units per shown unit
    name: str
    decimals: int
    show_rate: bool

    def amount(self, count: float) -> str:
        return f"{count / self.scale:.{self.decimals}f}"

    def of_total(self, done: int, total: int | None) -> str:
        shown = f"{self.amount(done)}/{self.amount(total)}" if total else self.amount(done)
        return f"{shown} {self.name}"


BYTES = Unit(scale=1e6, name="MB", decimals=1, show_rate=True)
PAGES = Unit(scale=1, name="pages", decimals=0, show_rate=False)


class CounterBar:
    def __init__(self, label: str, *, unit: Unit = PAGES, stream: IO[str] | None = None,
                 enabled: bool = True, log_every: float | None = None,
                 closing_note: Callable[[CounterBar], str] | None = None) -> None:
        """`closing_note`: the line `finish` writes off a terminal when all went well."""
        self.label = label
        self.closing_note = closing_note
        self.unit = unit
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.log_every = log_every
        # A bar redrawn in place where the terminal can do it (not TERM=dumb), else log lines.
        self.tty = can_redraw(self.stream)
        self.total: int | None = None
        self.done = 0
        self.started = time.monotonic()
        self.last_draw = 0.0
        self.last_logged_step = 0

    @property
    def elapsed(self) -> float:
        return max(time.monotonic() - self.started, 1e-6)

    def start(self, total: int | None, note: str | None = None) -> None:
        self.total, self.done, self.started = total, 0, time.monotonic()
        self.last_logged_step = 0
        if note:
            self.note(note)

    def advance(self, amount: int = 1) -> None:
        self.update(self.done + amount)

    def update(self, done: int) -> None:
        self.done = done
        if not self.enabled:
            return
        if self.tty:
            now = time.monotonic()
            if now - self.last_draw >= REDRAW_INTERVAL_S or done == self.total:
                self.last_draw = now
                self._draw()
        elif self.log_every and self.total:
            step = int(done / self.total / self.log_every)
            if step > self.last_logged_step:
                self.last_logged_step = step
                self.note(f"{self.label} {self.unit.of_total(done, self.total)}")

    def finish(self, ok: bool = True) -> None:
        if not self.enabled:
            return
        if self.tty:
            self._draw()
            self.stream.write("\n")
            self.stream.flush()
        elif ok and self.closing_note is not None:
            self.note(self.closing_note(self))

    def note(self, text: str) -> None:
        """A line of its own, for logs: a terminal has the bar instead."""
        if self.enabled and not self.tty:
            from llmtools.notices import program_name

            self.stream.write(f"{program_name()}: {text}\n")
            self.stream.flush()

    def _draw(self) -> None:
        rate = (f" {self.unit.amount(self.done / self.elapsed)} {self.unit.name}/s"
                if self.unit.show_rate else "")
        if self.total:
            fraction = min(1.0, self.done / self.total)
            filled = int(BAR_WIDTH * fraction)
            bar = "#" * filled + "-" * (BAR_WIDTH - filled)
            text = f"\r{self.label} [{bar}] {fraction:4.0%} {self.unit.of_total(self.done, self.total)}{rate}"
        else:
            text = f"\r{self.label} {self.unit.of_total(self.done, None)}{rate}"
        self.stream.write(text + (ERASE_LINE if may_style(self.stream) else ""))
        self.stream.flush()
