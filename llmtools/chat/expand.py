"""`$(cmd)` and `$$(cmd)` in a chat message, as LLMVM has them.

`$(cmd)` is replaced by what the shell command prints (its trailing newlines dropped, as a
shell's command substitution does); `$$(cmd)` by the last frame of a full-screen program,
taken as `llm-buffer -- cmd` takes it. Parentheses nest: `$(echo $(date))` is one command.
A `$` not followed by `(` is left alone, and `\\$(` is a literal `$(`.
"""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Callable

from llmtools.errors import UsageError

COMMAND_TIMEOUT_S = 120.0


def _closing(text: str, start: int) -> int:
    """Index of the `)` that closes the `(` at `start - 1`; -1 if none does."""
    depth = 1
    quote = None
    index = start
    while index < len(text):
        char = text[index]
        if quote:
            if char == quote:
                quote = None
            elif char == "\\" and quote == '"':
                index += 1
        elif char in "'\"":
            quote = char
        elif char == "\\":
            index += 1
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return index
        index += 1
    return -1


def expand(text: str, *, run_shell: Callable[[str], str] | None = None,
           run_screen: Callable[[str], str] | None = None) -> str:
    """`text` with each `$(cmd)` and `$$(cmd)` replaced by what the command shows."""
    run_shell = run_shell or shell_output
    run_screen = run_screen or screen_output
    out: list[str] = []
    index = 0
    while index < len(text):
        if text.startswith("\\$(", index):
            out.append("$(")
            index += 3
            continue
        screen = text.startswith("$$(", index)
        if not (screen or text.startswith("$(", index)):
            out.append(text[index])
            index += 1
            continue
        opening = index + (3 if screen else 2)
        closing = _closing(text, opening)
        if closing == -1:
            raise UsageError(f"unclosed {'$$(' if screen else '$('} in the message")
        command = text[opening:closing]
        out.append(run_screen(command) if screen else run_shell(command))
        index = closing + 1
    return "".join(out)


def has_substitution(text: str) -> bool:
    return "$(" in text


def shell_output(command: str) -> str:
    """What `sh -c command` prints on stdout; its stderr goes to the user's terminal."""
    try:
        completed = subprocess.run(["/bin/sh", "-c", command], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                   timeout=COMMAND_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise UsageError(f"$({command}) still running after {COMMAND_TIMEOUT_S:g}s; not sent") from None
    if completed.returncode != 0:
        from llmtools.notices import warn

        warn(f"$({command}) exited with status {completed.returncode}")
    return completed.stdout.decode("utf-8", "replace").rstrip("\n")


def screen_output(command: str) -> str:
    """The settled screen of `command` run in a pseudo-terminal (llm-buffer's capture)."""
    from llmtools import buffer

    try:
        words = shlex.split(command)
    except ValueError as error:
        raise UsageError(f"$$({command}): {error}") from None
    if not words:
        raise UsageError("$$() needs a command")
    return buffer.capture(words).text.rstrip("\n")
