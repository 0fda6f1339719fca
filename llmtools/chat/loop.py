"""The read-run loop of `llm chat`: a line in; a command, or a turn streamed out; until Ctrl-D."""

from __future__ import annotations

from collections.abc import Callable

from llmtools.chat import commands
from llmtools.chat.commands import ChatUI
from llmtools.chat.session import ChatSession
from llmtools.errors import LlmtoolsError

# Reads one message; EOFError when the user leaves, KeyboardInterrupt to drop the line.
ReadLine = Callable[[], str]


def run(session: ChatSession, ui: ChatUI, read_line: ReadLine) -> None:
    """Until Ctrl-D (or /quit). An error in one turn or command is reported and the session goes on."""
    while True:
        try:
            line = read_line()
        except KeyboardInterrupt:
            continue  # Ctrl-C at the prompt clears the line, as in a shell
        except EOFError:
            return
        try:
            if handle(session, ui, line) == commands.QUIT:
                return
        except LlmtoolsError as error:
            ui.notice(f"error: {' '.join(str(error).split())}")
        except KeyboardInterrupt:
            ui.notice("cancelled")


def handle(session: ChatSession, ui: ChatUI, line: str) -> commands.Result:
    """One line: a `/` command, or a message (after `$(...)` substitution) sent as a turn."""
    text = line.strip()
    if not text:
        return None
    if commands.is_command(text):
        result = commands.dispatch(session, ui, text)
        if not isinstance(result, commands.Send):
            return result
        text = result.text
    elif text.startswith("//"):
        text = text[1:]
    send(session, ui, text)
    return None


def send(session: ChatSession, ui: ChatUI, text: str) -> None:
    from llmtools.chat.expand import expand, has_substitution

    if has_substitution(text):
        text = expand(text)
    result = session.turn(text, ui.answer_display())
    for warning in result.warnings:
        ui.notice(f"warning: {warning}")
    if result.interrupted:
        ui.notice("answer cancelled; the partial answer stays in the thread (logged as interrupted)")
