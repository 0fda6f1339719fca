"""Reading the model's stream: prose, and the code of the first <helpers> block."""

from __future__ import annotations

HELPERS_OPEN, HELPERS_CLOSE = "<helpers>", "</helpers>"


def _held_back(text: str, tag: str) -> int:
    """How many trailing characters of `text` could be the start of `tag`."""
    for size in range(min(len(tag) - 1, len(text)), 0, -1):
        if tag.startswith(text[-size:]):
            return size
    return 0


class HelpersSplitter:
    """Splits streamed text into prose and the code of the first <helpers> block.

    A tag may arrive split across chunks, so text that could be the start of one is held
    back until the next chunk settles it. Whatever follows `</helpers>` is dropped: the
    block must run before the model can know what comes next.
    """

    def __init__(self) -> None:
        self.pending = ""
        self.state = "prose"  # prose, code, closed
        self.prose_parts: list[str] = []
        self.code_parts: list[str] = []
        self.text_parts: list[str] = []  # everything kept, tags included

    @property
    def closed(self) -> bool:
        return self.state == "closed"

    @property
    def opened(self) -> bool:
        return self.state != "prose"

    def _emit(self, kind: str, text: str, out: list) -> None:
        if text:
            (self.prose_parts if kind == "prose" else self.code_parts).append(text)
            self.text_parts.append(text)
            out.append((kind, text))

    def feed(self, chunk: str) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        self.pending += chunk
        while self.pending and self.state != "closed":
            tag = HELPERS_OPEN if self.state == "prose" else HELPERS_CLOSE
            kind = self.state
            found = self.pending.find(tag)
            if found < 0:
                keep = _held_back(self.pending, tag)
                self._emit(kind, self.pending[:len(self.pending) - keep], out)
                self.pending = self.pending[len(self.pending) - keep:]
                break
            self._emit(kind, self.pending[:found], out)
            self.text_parts.append(tag)
            self.pending = self.pending[found + len(tag):]
            if self.state == "prose":
                self.state = "code"
            else:
                self.state, self.pending = "closed", ""
        return out

    def finish(self) -> list[tuple[str, str]]:
        """The stream ended: what was held back is plain text after all."""
        out: list[tuple[str, str]] = []
        if self.state != "closed":
            self._emit(self.state, self.pending, out)
        self.pending = ""
        return out

    @property
    def code(self) -> str | None:
        return "".join(self.code_parts) if self.opened else None

    def assistant_text(self) -> str:
        """The reply as it goes in the stack: a block the provider's stop cut short is closed."""
        text = "".join(self.text_parts)
        if self.state == "code":
            text += HELPERS_CLOSE
        return text


def clean_code(code: str) -> str:
    """The code of a block, without a Markdown fence some models put inside the tags."""
    lines = code.strip("\n").splitlines()
    if lines and lines[0].strip().startswith("```"):
        lines = lines[1:]
        if lines and lines[-1].strip() == "```":
            lines = lines[:-1]
    return "\n".join(lines).strip("\n") + "\n" if lines else ""
