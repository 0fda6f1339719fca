"""The named pipe into a live chat: whatever another shell writes to it joins the thread.

    llm-fetch https://example.com > "$LLM_PIPE"
    git diff > "$LLM_PIPE"

The FIFO is created 0600 in the state's runtime directory (a 0700 directory of ours) and
removed when the session ends. A reader thread opens it, reads until every writer has
closed it, and hands what arrived (a stack, text, an image or a PDF, told apart by content
as stdin is) to the session as context for the next turn; then it opens it again for the
next writer. One write per `open`/`close` is one delivery.
"""

from __future__ import annotations

import contextlib
import os
import stat
import threading
from collections.abc import Callable
from pathlib import Path

from llmtools import stack
from llmtools.errors import LlmtoolsError

Delivered = Callable[[list[dict]], None]
Failed = Callable[[str], None]


def fifo_path(runtime_dir: Path) -> Path:
    return runtime_dir / f"chat-{os.getpid()}.fifo"


def make_fifo(path: Path) -> Path:
    """A fresh FIFO at `path`, mode 0600 (a stale one from a dead session is replaced)."""
    with contextlib.suppress(FileNotFoundError):
        if stat.S_ISFIFO(path.lstat().st_mode):
            path.unlink()
    os.mkfifo(path, 0o600)
    os.chmod(path, 0o600)  # whatever the umask said
    return path


class Inbox:
    def __init__(self, path: Path, delivered: Delivered, failed: Failed) -> None:
        self.path = path
        self.delivered = delivered
        self.failed = failed
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._run, name="llm-chat-inbox", daemon=True)

    def start(self) -> Inbox:
        make_fifo(self.path)
        self._thread.start()
        return self

    def _run(self) -> None:
        from llmtools.inputs import read_messages

        while not self._closing.is_set():
            try:
                with open(self.path, "rb") as fifo:  # blocks until a writer opens it
                    data = fifo.read()  # until every writer has closed it
            except OSError as error:
                self.failed(f"{self.path}: {error.strerror}")
                return
            if self._closing.is_set():
                return
            if not data.strip():
                continue
            try:
                messages = read_messages(data, source=str(self.path))
            except LlmtoolsError as error:
                self.failed(str(error))
                continue
            for msg in messages:
                msg.setdefault("meta", {}).setdefault("source", "pipe")
            self.delivered(messages)

    def close(self) -> None:
        """Stop the reader and remove the FIFO."""
        self._closing.set()
        if self._thread.is_alive():
            # The reader waits in open(): be the writer it waits for, so it wakes and sees closing.
            with contextlib.suppress(OSError):
                os.close(os.open(self.path, os.O_WRONLY | os.O_NONBLOCK))
            self._thread.join(timeout=2)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def describe(messages: list[dict]) -> str:
    """A one-line notice of what arrived: "2 messages (1,234 chars) from https://..."."""
    chars = sum(len(stack.text_of(msg)) for msg in messages)
    sources = sorted({str((msg.get("meta") or {}).get("source")) for msg in messages} - {"pipe", "None"})
    count = f"{len(messages)} message{'s' if len(messages) != 1 else ''}"
    origin = f" from {', '.join(sources)}" if sources else ""
    return f"{count} ({chars:,} chars){origin} joined the thread for the next turn"

