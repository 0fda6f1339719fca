"""Line editing for `llm chat`, through prompt_toolkit (imported here only, and only by chat).

Enter sends; Alt-Enter (Esc Enter) or Ctrl-J adds a line, and a pasted block keeps its
lines; Ctrl-E opens what is typed so far in $EDITOR; Ctrl-R searches the history, which
is kept across sessions in the data directory; Tab completes `/` commands (and file names
after /save and /p).
"""

from __future__ import annotations

from pathlib import Path

from llmtools.chat.commands import COMMANDS

PROMPT = "> "
CONTINUATION = ". "


def history_path() -> Path:
    from llmtools.statedirs import ensure_private_dir, paths

    # The history holds every line typed, as the log holds every prompt: 0700 like it.
    return ensure_private_dir(paths().data_dir) / "chat_history"


def _completer():
    from prompt_toolkit.completion import Completer, Completion, PathCompleter
    from prompt_toolkit.document import Document

    paths = PathCompleter(expanduser=True)

    class CommandCompleter(Completer):
        def get_completions(self, document, complete_event):
            text = document.text_before_cursor
            if not text.startswith("/") or text.startswith("//"):
                return
            name, space, rest = text[1:].partition(" ")
            if not space:
                for known in COMMANDS.values():
                    if known.name.startswith(name):
                        yield Completion("/" + known.name, start_position=-len(text), display_meta=known.help)
                return
            command = COMMANDS.get(name)
            if command is not None and command.takes_path:
                word = rest.split(" ")[-1]
                yield from paths.get_completions(Document(word, len(word)), complete_event)

    return CommandCompleter()


def _key_bindings():
    from prompt_toolkit.key_binding import KeyBindings

    bindings = KeyBindings()

    @bindings.add("escape", "enter")
    @bindings.add("c-j")
    def _newline(event) -> None:
        event.current_buffer.insert_text("\n")

    @bindings.add("c-e")
    def _in_editor(event) -> None:
        event.current_buffer.open_in_editor(validate_and_handle=True)

    return bindings


class LineReader:
    """Reads one message at a time; EOFError on Ctrl-D, KeyboardInterrupt on Ctrl-C."""

    def __init__(self, history_file: Path | None = None) -> None:
        from prompt_toolkit import PromptSession
        from prompt_toolkit.history import FileHistory

        self.session: PromptSession = PromptSession(
            history=FileHistory(str(history_file or history_path())),
            completer=_completer(), complete_while_typing=False,
            key_bindings=_key_bindings(), multiline=False, enable_history_search=False,
            prompt_continuation=CONTINUATION, enable_open_in_editor=True)

    def __call__(self) -> str:
        from prompt_toolkit.patch_stdout import patch_stdout

        # What another thread prints meanwhile (the named pipe's notices) goes above the prompt.
        with patch_stdout(raw=True):
            return self.session.prompt(PROMPT)
