"""Warnings and progress for the user: always stderr, never stdout (stdout is data)."""

from __future__ import annotations

import os
import sys


_program: str | None = None


def set_program_name(name: str) -> None:
    """The entry wrapper names the command; sys.argv[0] is "-c" under the bin/ shims."""
    global _program
    _program = name


def program_name() -> str:
    if _program:
        return _program
    return os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "llmtools"


def warn(message: str) -> None:
    print(f"{program_name()}: warning: {message}", file=sys.stderr, flush=True)


def note(message: str) -> None:
    print(f"{program_name()}: {message}", file=sys.stderr, flush=True)
