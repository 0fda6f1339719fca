"""Files and programs a chat hands text to: $EDITOR, /save, /thread-edit, /code, /copy."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from llmtools import stack
from llmtools.errors import InputError, UsageError

FENCE = re.compile(r"^(```+|~~~+)[^\n]*\n(.*?)^\1[ \t]*$", re.MULTILINE | re.DOTALL)

# Tried in order; the first whose program is installed (and whose display is there) is used.
CLIPBOARDS = (
    ("WAYLAND_DISPLAY", ["wl-copy"]),
    ("DISPLAY", ["xclip", "-selection", "clipboard"]),
    ("DISPLAY", ["xsel", "--clipboard", "--input"]),
    (None, ["pbcopy"]),
)


def editor_command() -> str:
    return os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"


def edit_text(initial: str, *, suffix: str = ".md") -> str:
    """Open `initial` in $VISUAL/$EDITOR (which may carry arguments); the saved text."""
    fd, name = tempfile.mkstemp(prefix="llm-chat-", suffix=suffix)
    path = Path(name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(initial)
        # Through the shell, as git does: EDITOR="code --wait" is a command line.
        status = subprocess.call(["/bin/sh", "-c", editor_command() + ' "$1"', "editor", str(path)])
        if status != 0:
            raise UsageError(f"the editor ({editor_command()}) exited with status {status}; nothing changed")
        return path.read_text(encoding="utf-8")
    finally:
        path.unlink(missing_ok=True)


def thread_as_jsonl(messages: list[dict]) -> str:
    return "".join(stack.dumps(msg) + "\n" for msg in messages)


def parse_edited_thread(text: str) -> list[dict]:
    """The thread as edited; an InputError naming the line when a line is not a message."""
    return stack.parse_stack(text, source="the edited thread")


def markdown_of(messages: list[dict]) -> str:
    """The thread as Markdown: one `## role` section per message."""
    sections = []
    for msg in messages:
        heading = msg["role"].capitalize()
        source = (msg.get("meta") or {}).get("source")
        if source:
            heading += f" ({source})"
        sections.append(f"## {heading}\n\n{stack.text_of(msg).rstrip()}\n")
    return "\n".join(sections)


def save(messages: list[dict], path: str) -> Path:
    """Write the thread: Markdown for a `.md`/`.markdown` name, else a JSONL stack."""
    target = Path(path).expanduser()
    text = markdown_of(messages) if target.suffix.lower() in (".md", ".markdown") else thread_as_jsonl(messages)
    try:
        target.write_text(text, encoding="utf-8")
    except OSError as error:
        raise InputError(f"cannot write {target}: {error.strerror}") from None
    return target


def code_blocks(text: str) -> list[str]:
    """The fenced code blocks of a Markdown text, in order, without their fences."""
    return [match.group(2) for match in FENCE.finditer(text)]


def clipboard_command() -> list[str] | None:
    for display, command in CLIPBOARDS:
        if (display is None or os.environ.get(display)) and shutil.which(command[0]):
            return command
    return None


def copy_to_clipboard(text: str) -> bool:
    """Put `text` on the clipboard; False when there is none to put it on."""
    command = clipboard_command()
    if command is None:
        return False
    try:
        subprocess.run(command, input=text.encode("utf-8"), check=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return False
    return True
