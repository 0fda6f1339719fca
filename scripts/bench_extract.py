#!/usr/bin/env python3
"""Main-content extraction compared: llmtools' own extractor, trafilatura, readability-lxml.

    .venv/bin/python scripts/bench_extract.py [--repeat 20] [--show NAME]

On the real-world-shaped pages of scripts/extract_pages.py (articles with comments, docs
with heavy navigation, forum and Q&A threads, product pages), each extractor's text is
checked for the phrases a reader came for (body kept, higher is better) and the page
furniture (boilerplate kept, lower is better); then the time per page. readability's
summary is HTML, turned into Markdown by llmtools' converter so all three are compared as
Markdown. Prints figures side by side; nothing here passes or fails.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from extract_pages import Page, all_pages  # noqa: E402

BASE_URL = "https://example.org/page"


def ours(html: str) -> str:
    from llmtools.content.html import html_to_markdown

    return html_to_markdown(html, base_url=BASE_URL).markdown


def trafilatura_markdown(html: str) -> str:
    import trafilatura

    return trafilatura.extract(html, url=BASE_URL, output_format="markdown", include_links=True,
                               include_tables=True, include_comments=False, favor_recall=True) or ""


def readability_markdown(html: str) -> str:
    from readability import Document

    from llmtools.content.html import html_to_markdown

    return html_to_markdown(Document(html).summary(html_partial=True), base_url=BASE_URL).markdown


EXTRACTORS: dict[str, Callable[[str], str]] = {
    "llmtools": ours,
    "trafilatura": trafilatura_markdown,
    "readability": readability_markdown,
}


def normalised(text: str) -> str:
    text = re.sub(r"[*_`#>\[\]|\\]", "", text)  # Markdown marks
    text = re.sub(r"\]\([^)]*\)|\(https?://[^)]*\)", "", text)  # link targets
    return re.sub(r"\s+", " ", text).lower()


def kept(phrases: list[str], text: str) -> int:
    return sum(1 for phrase in phrases if normalised(phrase) in text)


def score(page: Page, extract: Callable[[str], str]) -> tuple[int, int]:
    text = normalised(extract(page.html))
    return kept(page.body, text), kept(page.boilerplate, text)


def time_per_page_ms(pages: list[Page], extract: Callable[[str], str], repeat: int) -> float:
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        for page in pages:
            extract(page.html)
        timings.append((time.perf_counter() - started) / len(pages) * 1000)
    return statistics.median(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=20, help="timing rounds (median reported)")
    parser.add_argument("--show", metavar="NAME", help="print each extractor's text for page NAME")
    args = parser.parse_args()
    pages = all_pages()
    if args.show:
        [page] = [page for page in pages if page.name == args.show]
        for name, extract in EXTRACTORS.items():
            print(f"==> {name} <==\n{extract(page.html)}\n")
        return
    names = list(EXTRACTORS)
    print(f"{'page':<18} {'kind':<22} " + "  ".join(f"{name:>15}" for name in names))
    print(f"{'':<18} {'':<22} " + "  ".join(f"{'body / boiler':>15}" for _ in names))
    totals = {name: [0, 0] for name in names}
    for page in pages:
        cells = []
        for name in names:
            body, boiler = score(page, EXTRACTORS[name])
            totals[name][0] += body
            totals[name][1] += boiler
            cells.append(f"{body}/{len(page.body)} {boiler}/{len(page.boilerplate)}")
        print(f"{page.name:<18} {page.kind:<22} " + "  ".join(f"{cell:>15}" for cell in cells))
    body_total = sum(len(page.body) for page in pages)
    boiler_total = sum(len(page.boilerplate) for page in pages)
    print()
    print(f"{'body kept':<41} " + "  ".join(
        f"{totals[name][0] / body_total:>15.0%}" for name in names))
    print(f"{'boilerplate kept':<41} " + "  ".join(
        f"{totals[name][1] / boiler_total:>15.0%}" for name in names))
    print(f"{'ms per page (median)':<41} " + "  ".join(
        f"{time_per_page_ms(pages, EXTRACTORS[name], args.repeat):>15.2f}" for name in names))


if __name__ == "__main__":
    main()
