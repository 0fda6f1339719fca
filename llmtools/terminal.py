"""What a terminal may be sent, and the few things written to stderr for a person watching.

Escape codes go only to a terminal, and not even there when the user said no:
`NO_COLOR` set and non-empty (no-color.org) or `TERM=dumb` (a terminal that cannot
interpret them, e.g. an editor's shell buffer). Everything styled on stdout or stderr
asks `may_style` first, so one rule holds for rendered answers, thinking, the code
llm-exec shows and progress lines.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import IO

DIM, RESET = "\x1b[2m", "\x1b[0m"
ERASE_LINE = "\x1b[K"

SPINNER_FRAMES = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
SPINNER_INTERVAL_S = 0.1
# A fast answer should not flicker a spinner it never needed.
SPINNER_DELAY_S = 0.3


def is_terminal(stream: IO[str] | None) -> bool:
    try:
        return stream is not None and stream.isatty()
    except (AttributeError, ValueError):  # closed, or replaced by something without a descriptor
        return False


def colour_refused() -> bool:
    """The user's standing request for no escape codes: NO_COLOR (non-empty) or TERM=dumb."""
    return bool(os.environ.get("NO_COLOR")) or os.environ.get("TERM") == "dumb"


def may_style(stream: IO[str] | None) -> bool:
    return is_terminal(stream) and not colour_refused()


def can_redraw(stream: IO[str] | None) -> bool:
    """Whether a line may be rewritten in place with a carriage return (spinners, progress)."""
    return is_terminal(stream) and os.environ.get("TERM") != "dumb"


def write_stderr(text: str, *, dim: bool = False) -> None:
    """Text for a person on stderr (thinking, llm-exec's code), dimmed where styling is allowed."""
    if not text:
        return
    if dim and may_style(sys.stderr):
        text = f"{DIM}{text}{RESET}"
    sys.stderr.write(text)
    sys.stderr.flush()


class Spinner:
    """A quiet spinner on stderr while nothing has arrived yet; `stop()` erases it.

    It runs only when a person is watching the answer arrive: stderr and stdout both
    terminals (with stdout piped to a pager, a spinner on stderr would scribble over the
    pager's screen) and a terminal that can redraw a line. It is erased with spaces, not
    an escape code, so it leaves nothing behind under NO_COLOR.
    """

    def __init__(self) -> None:
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self._drawn = False
        self._thread: threading.Thread | None = None

    @classmethod
    def start_if_watched(cls) -> Spinner:
        spinner = cls()
        if can_redraw(sys.stderr) and is_terminal(sys.stdout):
            spinner._thread = threading.Thread(target=spinner._spin, name="spinner", daemon=True)
            spinner._thread.start()
        return spinner

    def _spin(self) -> None:
        if self._stopped.wait(SPINNER_DELAY_S):
            return
        frame = 0
        while True:
            with self._lock:
                if self._stopped.is_set():
                    return
                glyph = SPINNER_FRAMES[frame % len(SPINNER_FRAMES)]
                write_stderr("\r" + glyph, dim=True)
                self._drawn = True
            frame += 1
            if self._stopped.wait(SPINNER_INTERVAL_S):
                return

    def stop(self) -> None:
        """Erase the spinner before anything else is written; safe to call often."""
        if self._stopped.is_set():
            return
        with self._lock:
            self._stopped.set()
            if self._drawn:
                sys.stderr.write("\r \r")
                sys.stderr.flush()
                self._drawn = False
