"""The core of `llm-buffer`: run a program in a pseudo-terminal and keep what a person would see.

The program's output goes through a terminal emulator (pyte), so cursor movement, redraws
and alternate screens end up as the frame on screen, not as a stream of escape codes.
Capturing ends when the screen has not changed for `settle_s` (the frame has settled), when
the program exits, or at `max_duration_s`, whichever comes first; the program is then
stopped (SIGTERM, then SIGKILL).

`lines=True` is for programs that just print (`top -b -n 1`, a build log): every line they
wrote, scrollback included, instead of the last frame.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shlex
import signal
import time

from llmtools import stack
from llmtools.errors import UsageError

DEFAULT_SETTLE_S = 0.5
DEFAULT_MAX_DURATION_S = 30.0
DEFAULT_COLUMNS, DEFAULT_ROWS = 80, 24
# A terminal type pyte emulates well and every curses program knows; the caller's own TERM
# may be "dumb" or missing (cron, CI), where htop refuses to start.
TERM = "xterm-256color"
SCROLLBACK_LINES = 100_000
STOP_GRACE_S = 1.0
READ_CHUNK = 65536

CONTROL_KEY = re.compile(r"(?:[cC]-|\^)[a-zA-Z@\[\]\\^_]")
# Named keys for `keys`: what xterm sends for them.
KEY_SEQUENCES = {
    "enter": "\r", "return": "\r", "tab": "\t", "esc": "\x1b", "escape": "\x1b", "space": " ",
    "backspace": "\x7f", "up": "\x1b[A", "down": "\x1b[B", "right": "\x1b[C", "left": "\x1b[D",
    "home": "\x1b[H", "end": "\x1b[F", "pageup": "\x1b[5~", "pagedown": "\x1b[6~",
    "delete": "\x1b[3~", "insert": "\x1b[2~",
    "f1": "\x1bOP", "f2": "\x1bOQ", "f3": "\x1bOR", "f4": "\x1bOS", "f5": "\x1b[15~",
    "f6": "\x1b[17~", "f7": "\x1b[18~", "f8": "\x1b[19~", "f9": "\x1b[20~", "f10": "\x1b[21~",
    "f11": "\x1b[23~", "f12": "\x1b[24~",
}


@dataclasses.dataclass
class Capture:
    text: str
    command: list[str]
    exit_status: int | None = None  # the program's own, when it ended by itself
    signal: int | None = None  # the signal that ended it by itself (not ours)
    timed_out: bool = False  # still changing at max_duration_s
    pid: int | None = None  # the program's process id (gone by the time this is returned)

    @property
    def command_line(self) -> str:
        return shlex.join(self.command)

    def message(self) -> dict:
        meta: dict = {"source": self.command_line, "tool": "llm-buffer", "created": stack.now_iso()}
        if self.exit_status is not None:
            meta["exit_status"] = self.exit_status
        if self.signal is not None:
            meta["signal"] = self.signal
        if self.timed_out:
            meta["timed_out"] = True
        return {"role": "user", "content": self.text, "meta": meta}


def parse_size(value: str) -> tuple[int, int]:
    """"COLSxROWS" (as `stty size` is not: columns first, like 80x24) → (columns, rows)."""
    columns, sep, rows = value.lower().partition("x")
    if not sep or not columns.isdigit() or not rows.isdigit() or int(columns) < 2 or int(rows) < 2:
        raise UsageError(f"--size takes COLSxROWS, e.g. 120x40 (got {value!r})")
    return int(columns), int(rows)


def parse_keys(value: str) -> str:
    """Keystrokes from space-separated names: F1-F12, Enter, Esc, Tab, Space, Up, Down, Left,
    Right, Home, End, PageUp, PageDown, Delete, Insert, Backspace, C-x (control), or literal
    text (a word that is none of these is typed as it is)."""
    sent = []
    for word in value.split():
        named = KEY_SEQUENCES.get(word.lower())
        if named is not None:
            sent.append(named)
        elif CONTROL_KEY.fullmatch(word):
            sent.append(chr(ord(word[-1].upper()) - 64))
        else:
            sent.append(word)
    return "".join(sent)


def _tolerant(screen_class):
    """pyte's screen, taught to ignore xterm's private `CSI > ... m` (vim sends it to set
    modifyOtherKeys): pyte 0.8 passes it to the SGR handler, which does not take it."""

    def select_graphic_rendition(self, *attrs, private=False):
        if not private:
            screen_class.select_graphic_rendition(self, *attrs)

    return type(f"Tolerant{screen_class.__name__}", (screen_class,),
                {"select_graphic_rendition": select_graphic_rendition})


class _Terminal:
    """pyte's screen and the byte stream that feeds it."""

    def __init__(self, columns: int, rows: int, *, lines: bool) -> None:
        import pyte

        if lines:
            self.screen = _tolerant(pyte.HistoryScreen)(columns, rows, history=SCROLLBACK_LINES, ratio=0.5)
        else:
            self.screen = _tolerant(pyte.Screen)(columns, rows)
        self.stream = pyte.ByteStream(self.screen)
        self.lines = lines

    def feed(self, data: bytes) -> bool:
        """Feed output; whether what is visible changed."""
        before = self.screen.display
        self.stream.feed(data)
        return self.screen.display != before

    def text(self) -> str:
        rows = self.screen.display
        if self.lines:
            columns = self.screen.columns
            scrolled = ["".join(line[x].data for x in range(columns)) for line in self.screen.history.top]
            rows = scrolled + rows
        stripped = [row.rstrip() for row in rows]
        while stripped and not stripped[-1]:
            stripped.pop()
        return "\n".join(stripped) + ("\n" if stripped else "")


def _spawn(command: list[str], columns: int, rows: int):
    import pexpect

    env = {**os.environ, "TERM": TERM, "COLUMNS": str(columns), "LINES": str(rows)}
    try:
        return pexpect.spawn(command[0], command[1:], dimensions=(rows, columns), env=env,
                             encoding=None, echo=False)
    except pexpect.ExceptionPexpect as error:
        raise UsageError(f"cannot run {command[0]}: {error}") from None


def _watch(child, terminal: _Terminal, *, settle_s: float, deadline: float) -> tuple[bool, bool]:
    """Feed the program's output until the screen settles, it exits or the deadline passes.

    Returns (exited, timed_out).
    """
    import pexpect

    last_change = time.monotonic()
    while True:
        now = time.monotonic()
        if now >= deadline:
            return False, True
        quiet_left = last_change + settle_s - now
        if quiet_left <= 0:
            return False, False
        try:
            data = child.read_nonblocking(READ_CHUNK, timeout=min(quiet_left, deadline - now))
        except pexpect.TIMEOUT:
            continue
        except pexpect.EOF:
            return True, False
        if terminal.feed(data):
            last_change = time.monotonic()


def _stop(child) -> tuple[int | None, int | None]:
    """End the program if it still runs; (exit status, signal) when it had ended by itself."""
    if not child.isalive():
        child.close()
        return child.exitstatus, child.signalstatus
    for signum in (signal.SIGTERM, signal.SIGKILL):
        try:
            child.kill(signum)
        except OSError:
            break
        deadline = time.monotonic() + STOP_GRACE_S
        while child.isalive() and time.monotonic() < deadline:
            time.sleep(0.02)
        if not child.isalive():
            break
    child.close(force=True)
    return None, None


def capture(command: list[str], *, settle_s: float = DEFAULT_SETTLE_S,
            max_duration_s: float = DEFAULT_MAX_DURATION_S,
            size: tuple[int, int] = (DEFAULT_COLUMNS, DEFAULT_ROWS), keys: str | None = None,
            lines: bool = False) -> Capture:
    """Run `command` in a pty of `size` (columns, rows) and return what it shows once settled.

    `keys` (as `parse_keys` reads them) are typed once the first frame has settled, and the
    frame is taken again after they have had their effect.
    """
    if not command:
        raise UsageError("no command given (llm-buffer -- CMD ARGS...)")
    columns, rows = size
    terminal = _Terminal(columns, rows, lines=lines)
    deadline = time.monotonic() + max_duration_s
    child = _spawn(command, columns, rows)
    try:
        exited, timed_out = _watch(child, terminal, settle_s=settle_s, deadline=deadline)
        if keys and not exited and not timed_out:
            child.send(parse_keys(keys).encode())
            exited, timed_out = _watch(child, terminal, settle_s=settle_s, deadline=deadline)
    finally:
        status, signum = _stop(child)
    if exited:
        _drain(child, terminal)
    return Capture(terminal.text(), list(command), exit_status=status if exited else None,
                   signal=signum if exited else None, timed_out=timed_out, pid=child.pid)


def _drain(child, terminal: _Terminal) -> None:
    """Anything left in pexpect's buffer after EOF (a program that printed and exited at once)."""
    leftover = getattr(child, "buffer", b"") or b""
    if leftover:
        terminal.feed(leftover)
