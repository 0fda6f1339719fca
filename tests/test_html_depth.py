"""The HTML extractor's furniture rules measure each element once: the text it reads grows
with the page, not with the page times its nesting depth."""

from __future__ import annotations

import re

from llmtools.content import html


class CountingSpaces:
    """Stands in for html._SPACES, adding up the characters of text it is asked to strip."""

    def __init__(self) -> None:
        self.pattern = re.compile(r"\s+")
        self.characters = 0

    def sub(self, replacement: str, text: str) -> str:
        self.characters += len(text)
        return self.pattern.sub(replacement, text)


def nested_page(depth: int) -> str:
    lists = "".join(f"<p>{'word ' * 30}</p><ul>" + "".join(f'<li><a href="/{i}-{j}">link {j}</a></li>'
                                                         for j in range(6)) + "</ul>" for i in range(40))
    return "<html><body>" + "<div>" * depth + lists + "</div>" * depth + "</body></html>"


def characters_read(monkeypatch, page: str) -> int:
    counter = CountingSpaces()
    monkeypatch.setattr(html, "_SPACES", counter)
    html.html_to_markdown(page)
    return counter.characters


def test_text_read_does_not_grow_with_nesting_depth(monkeypatch):
    shallow = characters_read(monkeypatch, nested_page(5))
    deep = characters_read(monkeypatch, nested_page(80))
    # Same text, 16 times the depth: re-reading each subtree per ancestor would read ~16 times more.
    assert deep < 1.5 * shallow


def test_link_lists_are_dropped_unless_they_hold_the_heading():
    items = "".join(f'<li><a href="/x{n}">destination {n}</a></li>' for n in range(8))
    bare = " ".join(f'<a href="/y{n}">place {n}</a>' for n in range(8))
    page = (f"<html><body><div><div><ul>{items}</ul></div></div>"
            f"<p>{'Body text of the article. ' * 40}</p>"
            f"<section><h1>Contents</h1>{bare}</section></body></html>")
    text = html.html_to_markdown(page, "https://example.org/").markdown
    assert "destination" not in text and "Body text" in text and "[place 3](https://example.org/y3)" in text
