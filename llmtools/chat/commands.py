"""The `/` commands of `llm chat`.

Each handler takes the session, the UI and the rest of the line, and returns what happens
next: nothing (stay at the prompt), `Send(text)` (a message to send as the next turn, as
/edit composes one) or `QUIT`.
"""

from __future__ import annotations

import dataclasses
import shlex
from collections.abc import Callable
from typing import Protocol

from llmtools.chat.session import AnswerDisplay, ChatSession
from llmtools.errors import UsageError


class ChatUI(Protocol):
    """What a session shows and the turns it hands to other tools (the command layer's)."""

    def show(self, text: str) -> None: ...  # text for the person (Markdown rendered on a terminal)

    def output(self, text: str) -> None: ...  # data, as it is (/copy without a clipboard)

    def notice(self, text: str) -> None: ...  # a one-line note on stderr

    def answer_display(self) -> AnswerDisplay: ...

    def run_exec(self, session: ChatSession, task: str) -> None: ...

    def evaluate(self, session: ChatSession, expression: str) -> None: ...


@dataclasses.dataclass
class Send:
    text: str


QUIT = "quit"
Result = Send | str | None
Handler = Callable[[ChatSession, ChatUI, str], Result]


@dataclasses.dataclass
class Command:
    name: str
    usage: str
    help: str
    handler: Handler
    takes_path: bool = False


COMMANDS: dict[str, Command] = {}


def command(name: str, usage: str, help_text: str, *, takes_path: bool = False):
    def register(handler: Handler) -> Handler:
        COMMANDS[name] = Command(name, usage, help_text, handler, takes_path)
        return handler

    return register


def is_command(line: str) -> bool:
    """A line starting with `/` is a command; `//` at the start sends a literal `/`."""
    return line.startswith("/") and not line.startswith("//")


def dispatch(session: ChatSession, ui: ChatUI, line: str) -> Result:
    name, _, rest = line[1:].partition(" ")
    found = COMMANDS.get(name)
    if found is None:
        matches = [known for known in COMMANDS if known.startswith(name)] if name else []
        if len(matches) != 1:
            raise UsageError(f"no command /{name} (/help lists them)")
        found = COMMANDS[matches[0]]
    return found.handler(session, ui, rest.strip())


# --- the commands ---------------------------------------------------------------------


@command("help", "/help", "List the commands and keys.")
def _help(session, ui, rest) -> Result:
    width = max(len(cmd.usage) for cmd in COMMANDS.values())
    lines = [f"{cmd.usage.ljust(width)}  {cmd.help}" for cmd in COMMANDS.values()]
    lines += ["", "Enter sends; Alt-Enter or Ctrl-J adds a line; Ctrl-E composes in $EDITOR;",
              "Ctrl-R searches the history; Ctrl-C cancels an answer; Ctrl-D leaves.",
              "$(cmd) in a message is replaced by its output, $$(cmd) by its screen (llm-buffer).",
              "// at the start sends a line that begins with /."]
    ui.output("\n".join(lines) + "\n")
    return None


@command("model", "/model [NAME]", "Switch the model for the next turns (alone: show it).")
def _model(session, ui, rest) -> Result:
    if rest:
        session.set_model(rest)
    ui.notice(f"model: {session.spec.name}")
    return None


@command("system", "/system [TEXT]", "Set the system prompt ('-' removes it; alone: show it).")
def _system(session, ui, rest) -> Result:
    if rest:
        session.set_system(None if rest == "-" else rest)
    current = session.system()
    ui.notice(f"system: {current}" if current else "no system prompt")
    return None


@command("thread", "/thread", "Show the thread so far (and what joins the next turn).")
def _thread(session, ui, rest) -> Result:
    from llmtools.chat.editing import markdown_of

    messages = session.whole_thread()
    if not messages:
        ui.notice("the thread is empty")
        return None
    ui.show(markdown_of(messages))
    return None


@command("new", "/new", "Start a new thread (the system prompt stays).")
def _new(session, ui, rest) -> Result:
    session.new_thread()
    ui.notice("new thread")
    return None


@command("save", "/save FILE", "Write the thread: a JSONL stack, or Markdown for FILE.md.", takes_path=True)
def _save(session, ui, rest) -> Result:
    from llmtools.chat.editing import save

    if not rest:
        raise UsageError("/save needs a file name")
    path = save(session.whole_thread(), rest)
    ui.notice(f"saved {len(session.whole_thread())} messages to {path}")
    return None


@command("edit", "/edit", "Compose the next message in $EDITOR (Ctrl-E does the same).")
def _edit(session, ui, rest) -> Result:
    from llmtools.chat.editing import edit_text

    text = edit_text(rest).strip()
    if not text:
        ui.notice("empty message; nothing sent")
        return None
    return Send(text)


@command("thread-edit", "/thread-edit", "Edit the whole thread as JSONL in $EDITOR.")
def _thread_edit(session, ui, rest) -> Result:
    from llmtools.chat.editing import edit_text, parse_edited_thread, thread_as_jsonl

    text = edit_text(thread_as_jsonl(session.thread), suffix=".jsonl")
    session.replace_thread(parse_edited_thread(text))  # a bad line: error, thread unchanged
    ui.notice(f"thread now has {len(session.thread)} messages")
    return None


@command("copy", "/copy", "Copy the last answer to the clipboard (no clipboard: print it).")
def _copy(session, ui, rest) -> Result:
    answer = session.last_answer()
    if answer is None:
        raise UsageError("no answer yet")
    _to_clipboard(ui, answer, "the last answer")
    return None


@command("code", "/code [N]", "Copy the last answer's Nth code block (default 1; no clipboard: print it).")
def _code(session, ui, rest) -> Result:
    from llmtools.chat.editing import code_blocks

    answer = session.last_answer()
    if answer is None:
        raise UsageError("no answer yet")
    blocks = code_blocks(answer)
    if not rest.isdigit() and rest:
        raise UsageError("/code takes a block number")
    number = int(rest or 1)
    if not 1 <= number <= len(blocks):
        raise UsageError(f"the last answer has {len(blocks)} code block{'s' if len(blocks) != 1 else ''}")
    _to_clipboard(ui, blocks[number - 1], f"code block {number}")
    return None


def _to_clipboard(ui: ChatUI, text: str, what: str) -> None:
    from llmtools.chat.editing import copy_to_clipboard

    if copy_to_clipboard(text):
        ui.notice(f"copied {what} to the clipboard")
    else:
        ui.output(text if text.endswith("\n") else text + "\n")


@command("exec", "/exec TASK", "Do TASK through llm-exec, on this chat's runtime thread.")
def _exec(session, ui, rest) -> Result:
    if not rest:
        raise UsageError("/exec needs a task")
    ui.run_exec(session, rest)
    return None


@command("eval", "/eval EXPR", "Evaluate EXPR in this chat's runtime (what /exec defined).")
def _eval(session, ui, rest) -> Result:
    if not rest:
        raise UsageError("/eval needs an expression")
    ui.evaluate(session, rest)
    return None


@command("p", "/p PATH...", "Add files, globs or URLs to the next turn, as -p does.", takes_path=True)
def _paths(session, ui, rest) -> Result:
    from llmtools.chat.inbox import describe
    from llmtools.inputs import path_messages

    try:
        values = shlex.split(rest)
    except ValueError as error:
        raise UsageError(f"/p: {error}") from None
    if not values:
        raise UsageError("/p needs a path, glob or URL")
    messages = path_messages(values)
    session.add_context(messages)
    ui.notice(describe(messages))
    return None


@command("quit", "/quit", "Leave (as Ctrl-D does).")
def _quit(session, ui, rest) -> Result:
    return QUIT


def runtime_thread(session: ChatSession) -> str:
    """The llm-exec runtime thread of this chat: one per conversation."""
    return f"chat-{session.conversation_id}"
