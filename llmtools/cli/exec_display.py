"""What `llm-exec` (and `/exec` in `llm chat`) shows while it works: each code block and its
result on stderr, as the model sees them, and the --confirm question on the terminal."""

from __future__ import annotations

from llmtools.terminal import write_stderr


class WorkDisplay:
    """Code blocks and their results on stderr, as the model sees them; dimmed on a terminal."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.in_code = False
        self.code_ends_line = True

    def _write(self, text: str) -> None:
        if not self.quiet:
            write_stderr(text, dim=True)

    def code(self, text: str) -> None:
        if not self.in_code:
            self._write("<helpers>")
            self.in_code = True
        self._write(text)
        self.code_ends_line = text.endswith("\n")

    def end_code(self, code: str) -> None:
        if not self.in_code:  # an empty block still shows as one
            self._write("<helpers>\n" + code)
            self.code_ends_line = code.endswith("\n") or not code
        self._write(("" if self.code_ends_line else "\n") + "</helpers>\n")
        self.in_code = False

    def result(self, feedback: str) -> None:
        self._write(f"<helpers_result>\n{feedback}\n</helpers_result>\n")

    def note(self, text: str) -> None:
        self._write(f"[{text}]\n")


class Terminal:
    """/dev/tty, for questions: stdin may be the task's data and stdout a pipe."""

    def __init__(self) -> None:
        from llmtools.errors import UsageError

        try:
            # Two handles: a tty cannot be opened "r+" in text mode (it is not seekable).
            self.reader = open("/dev/tty", encoding="utf-8", errors="replace")  # noqa: SIM115
            self.writer = open("/dev/tty", "w", encoding="utf-8", errors="replace")  # noqa: SIM115
        except OSError:
            raise UsageError("--confirm needs a terminal to ask on, and /dev/tty cannot be "
                             "opened") from None

    def ask(self, text: str) -> str:
        self.writer.write(text)
        self.writer.flush()
        return self.reader.readline()

    def close(self) -> None:
        self.reader.close()
        self.writer.close()


def tty_confirm(show_code: bool):
    """A confirm function asking on /dev/tty; the Terminal to close."""
    from llmtools import codeact

    tty = Terminal()

    def confirm(code: str) -> str:
        shown = f"<helpers>\n{code}</helpers>\n" if show_code else ""  # not on this terminal yet
        answer = tty.ask(shown + "Run this block? [y]es, [N]o (tell the model), [q]uit: ")
        if not answer:  # end of file: nobody to say yes
            return codeact.QUIT
        word = answer.strip().lower()
        if word in ("y", "yes"):
            return codeact.RUN
        if word in ("q", "quit"):
            return codeact.QUIT
        return codeact.SKIP

    return confirm, tty
