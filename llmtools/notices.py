"""Warnings and notes for the user: the one channel, always stderr, never stdout (stdout is data).

Everything a user should hear about that is neither data nor the error that ends the
command (a file skipped, a prompt cut to fit, a request being retried, a model being
downloaded) goes through `warn` or `note`:

    llm: warning: skipping binary file logo.bin
    llm: warning: model sonnet: overloaded; retrying in 1.3s (attempt 2 of 4)

Inside `with notices_to(callback):` the same calls, made in that thread, go to
`callback(level, message)` instead (level "warning" or "note"): that is how a daemon
hands them to the client whose request caused them, and how a test collects them.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Callable, Iterator

LEVELS = ("warning", "note")
Sink = Callable[[str, str], None]

_program: str | None = None
_sink = threading.local()


def set_program_name(name: str) -> None:
    """The entry wrapper names the command; sys.argv[0] is "-c" under the bin/ shims."""
    global _program
    _program = name


def program_name() -> str:
    if _program:
        return _program
    return os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "llmtools"


@contextlib.contextmanager
def notices_to(callback: Sink) -> Iterator[None]:
    """Send this thread's warnings and notes to `callback(level, message)` for the duration."""
    previous = getattr(_sink, "callback", None)
    _sink.callback = callback
    try:
        yield
    finally:
        _sink.callback = previous


def tell(level: str, message: str) -> None:
    """A notice of `level` ("warning" or "note"): to this thread's sink, else a line on stderr."""
    if level not in LEVELS:
        raise ValueError(f"notice level must be one of {', '.join(LEVELS)} (got {level!r})")
    callback = getattr(_sink, "callback", None)
    if callback is not None:
        callback(level, message)
        return
    prefix = f"{program_name()}: warning: " if level == "warning" else f"{program_name()}: "
    print(prefix + message, file=sys.stderr, flush=True)


def warn(message: str) -> None:
    tell("warning", message)


def note(message: str) -> None:
    tell("note", message)
