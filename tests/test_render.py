"""Markdown on a terminal; raw text everywhere else."""

from __future__ import annotations

import io

from llmtools.cli.output import TextWriter
from llmtools.render import BOLD, CYAN, MarkdownStream, YELLOW


def rendered(chunks: list[str]) -> str:
    out = io.StringIO()
    stream = MarkdownStream(out)
    for chunk in chunks:
        stream.feed(chunk)
    stream.close()
    return out.getvalue()


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
    writer.close()
    assert out.getvalue() == f"{BOLD}x\x1b[0m\n"
