"""`llm chat`: an interactive session on the same thread model as `llm -c` (see llm(1), CHAT)."""

from __future__ import annotations

import contextlib
import os

import click

from llmtools.cli.options import CONTEXT_SETTINGS, RAW_HELP, debug_option, log_option, model_options, version_option
from llmtools.cli.output import AnswerFormat, AnswerWriter, TextWriter, renders_markdown, write_raw


class TerminalUI:
    """What a chat shows, through the output layer: answers as `llm` renders them."""

    def __init__(self, raw: bool) -> None:
        self.raw = raw

    def show(self, text: str) -> None:
        writer = TextWriter(markdown=renders_markdown(self.raw))
        writer.write(text)
        writer.close()

    def output(self, text: str) -> None:
        write_raw(text)

    def notice(self, text: str) -> None:
        from llmtools.notices import note

        note(text)

    def answer_display(self) -> AnswerWriter:
        return AnswerWriter(AnswerFormat(raw=self.raw))

    def run_exec(self, session, task: str) -> None:
        from llmtools.cli.chat_exec import run_exec_turn

        run_exec_turn(session, task, self.answer_display(), self.notice)

    def evaluate(self, session, expression: str) -> None:
        from llmtools.cli.chat_exec import evaluate

        evaluate(session, expression)


@click.command("chat", context_settings=CONTEXT_SETTINGS)
@model_options
@click.option("-s", "--system", metavar="TEXT", help="System prompt (replaces the thread's).")
@click.option("-p", "--path", "paths", multiple=True, metavar="PATH|GLOB|URL",
              help="File, directory, glob or URL to add to the first turn; repeatable.")
@click.option("-c", "--continue", "continue_last", is_flag=True, help="Continue the last conversation.")
@click.option("--cid", metavar="ID", help="Continue the conversation with this id (or id prefix).")
@click.option("--no-pipe", is_flag=True, help="Do not create the named pipe ($LLM_PIPE).")
@click.option("--raw", is_flag=True, help=RAW_HELP)
@log_option("Do not log the turns (llm -c will not see them).")
@version_option
@debug_option
def chat_command(model, temperature, max_tokens, thinking, model_timeout, system, paths, continue_last, cid,
                 no_pipe, raw, no_log) -> None:
    """Talk with MODEL, turn by turn; each turn is logged as it happens.

    \b
      llm chat                     a new conversation
      llm chat -c                  go on with the last one (llm -c sees this one too)
      llm chat -m sonnet -p notes.md

    Enter sends, Alt-Enter adds a line, Ctrl-C cancels an answer, Ctrl-D leaves. /help
    lists the commands (/model, /system, /save, /edit, /exec, ...). Anything written to
    the named pipe in $LLM_PIPE joins the thread for the next turn.
    """
    from llmtools.ask import thread_model
    from llmtools.chat import loop
    from llmtools.chat.session import ChatSession, continued_options, resume
    from llmtools.inputs import path_messages
    from llmtools.notices import warn

    continued = resume(continue_last=continue_last, conversation=cid)
    # As `llm -c`: a conversation goes on with its own model and options unless -m (or the
    # option's flag) says otherwise.
    warnings: list[str] = []
    spec = thread_model(continued, model, warnings)
    for warning in warnings:
        warn(warning)
    if model_timeout is not None:
        spec.timeout = model_timeout
    conversation_id, thread = continued.conversation_id, continued.messages
    options = continued_options(continued, temperature=temperature, max_tokens=max_tokens, thinking=thinking,
                                timeout=model_timeout)
    session = ChatSession(spec, thread=thread, conversation_id=conversation_id, options=options, log=not no_log)
    if system is not None:
        session.set_system(system)
    if paths:
        session.add_context(path_messages(list(paths)))
    ui = TerminalUI(raw)
    with _named_pipe(session, ui, enabled=not no_pipe) as pipe:
        _greet(session, ui, pipe, resumed=bool(thread))
        loop.run(session, ui, _line_reader())


def _greet(session, ui: TerminalUI, pipe, *, resumed: bool) -> None:
    if resumed:
        ui.notice(f"continuing conversation {session.conversation_id} ({len(session.thread)} messages)")
    where = f"; pipe: {pipe}" if pipe else ""
    ui.notice(f"chatting with {session.spec.name}{where}; /help for commands, Ctrl-D to leave")


@contextlib.contextmanager
def _named_pipe(session, ui: TerminalUI, *, enabled: bool):
    """The FIFO other shells write context into, exported as LLM_PIPE while the chat runs."""
    if not enabled:
        yield None
        return
    from llmtools.chat.inbox import Inbox, describe, fifo_path
    from llmtools.statedirs import ensure_private_dir, paths

    def delivered(messages: list[dict]) -> None:
        session.add_context(messages)
        ui.notice(describe(messages))

    inbox = Inbox(fifo_path(ensure_private_dir(paths().runtime_dir)), delivered,
                  lambda problem: ui.notice(f"pipe: {problem}")).start()
    before = os.environ.get("LLM_PIPE")
    os.environ["LLM_PIPE"] = str(inbox.path)
    try:
        yield inbox.path
    finally:
        inbox.close()
        if before is None:
            os.environ.pop("LLM_PIPE", None)
        else:
            os.environ["LLM_PIPE"] = before


def _line_reader():
    """prompt_toolkit on a terminal; plain lines from a pipe (`printf 'hi\\n/save x\\n' | llm chat`)."""
    from llmtools.cli.output import read_line, stdin_is_piped

    if stdin_is_piped():
        return read_line
    from llmtools.chat.terminal import LineReader

    return LineReader()


command = chat_command
