"""Markdown on a terminal; raw text everywhere else."""

from __future__ import annotations

import io
import re

from llmtools.cli.output import TextWriter
from llmtools.render import (
    BOLD,
    CYAN,
    ERASE_TO_END_OF_SCREEN,
    MAGENTA,
    RESET,
    YELLOW,
    MarkdownStream,
    display_width,
)


def settled(output: str) -> str:
    """What a terminal shows once `output` is written, with the stream's redraws applied:
    ESC[nA climbs n rows, CR + ESC[J clears from the start of the row to the end of the screen."""
    rows, row = [""], 0
    for token in re.split(r"(\x1b\[\d*A|\r\x1b\[J|\n)", output):
        if token == "\n":
            row += 1
            rows[row:row + 1] = rows[row:row + 1] or [""]
        elif token == "\r\x1b[J":
            del rows[row + 1:]
            rows[row] = ""
        elif re.fullmatch(r"\x1b\[\d*A", token):
            row -= int(token[2:-1] or 1)
        else:
            rows[row] += token
    return "\n".join(rows)


def rendered(chunks: list[str]) -> str:
    out = io.StringIO()
    stream = MarkdownStream(out, terminal_size=lambda: (80, 24))
    for chunk in chunks:
        stream.feed(chunk)
    stream.close()
    return settled(out.getvalue())


def test_markdown_is_styled_line_by_line_even_when_split_across_chunks():
    text = rendered(["# Ti", "tle\nSome **bo", "ld** and `co", "de`.\n", "```py\nx = 1\n```\n- item"])
    lines = text.splitlines()
    assert BOLD in lines[0] and "Title" in lines[0] and "#" not in lines[0]
    assert f"{BOLD}bold" in lines[1] and f"{CYAN}code" in lines[1] and "**" not in lines[1]
    assert f"{YELLOW}x = 1" in lines[3]
    assert lines[5].startswith("• item")


def test_code_spans_keep_their_asterisks():
    assert "a*b*c" in rendered(["`a*b*c`\n"])


def test_a_pipe_gets_the_raw_text_and_a_final_newline():
    out = io.StringIO()
    writer = TextWriter(out, markdown=False)
    writer.write("# Title\n**x**")
    writer.close()
    assert out.getvalue() == "# Title\n**x**\n"


def test_a_terminal_gets_rendered_text():
    out = io.StringIO()
    writer = TextWriter(out, markdown=True)
    writer.write("**x**")
    assert out.getvalue() == "**x**"  # shown at once, before its line is known to be complete
    writer.close()
    assert settled(out.getvalue()) == f"{BOLD}x\x1b[0m\n"


# --- text shown as it arrives, styled when its line completes ----------------------------


class Screen:
    """A MarkdownStream on a terminal of a given size, and what was written to it."""

    def __init__(self, columns: int = 80, lines: int = 24) -> None:
        self.out = io.StringIO()
        self.stream = MarkdownStream(self.out, terminal_size=lambda: (columns, lines))

    def feed(self, text: str) -> str:
        """What this piece of text made the stream write, at once."""
        before = len(self.out.getvalue())
        self.stream.feed(text)
        return self.out.getvalue()[before:]


def test_a_partial_line_is_written_at_once_and_redrawn_styled_when_it_ends():
    screen = Screen()
    assert screen.feed("Some **bo") == "Some **bo"
    assert screen.feed("ld** text") == "ld** text"
    assert screen.feed(" done.\n") == f"\r{ERASE_TO_END_OF_SCREEN}Some {BOLD}bold{RESET} text done.\n"


def test_a_line_needing_no_style_is_written_once():
    screen = Screen()
    assert screen.feed("plain wor") == "plain wor"
    assert screen.feed("ds\nnext") == "ds\nnext"


def test_a_line_arriving_whole_is_written_styled_without_a_redraw():
    assert Screen().feed("# Title\n") == f"{BOLD}{MAGENTA}Title{RESET}\n"


def test_a_wrapped_line_is_redrawn_from_its_first_row():
    screen = Screen(columns=10)
    screen.feed("**" + "x" * 20)  # 22 columns shown: rows 1 to 3 of a 10-column terminal
    assert screen.feed("**\n") == f"\x1b[2A\r{ERASE_TO_END_OF_SCREEN}{BOLD}{'x' * 20}{RESET}\n"


def test_a_line_filling_its_last_row_exactly_climbs_no_further():
    screen = Screen(columns=10)
    screen.feed("**" + "x" * 8)  # exactly 10 columns: the cursor is still on the first row
    assert screen.feed("**\n").startswith("\r" + ERASE_TO_END_OF_SCREEN)


def test_a_line_taller_than_the_screen_is_left_unstyled():
    screen = Screen(columns=10, lines=3)
    screen.feed("**" + "x" * 40)  # its start has scrolled out of reach
    assert screen.feed("**\n") == "**\n"


def test_wide_characters_count_two_columns():
    assert display_width("日本") == 4
    assert display_width("e\u0301") == 1  # a combining accent takes no column
    assert display_width("a\tb") == 9
