"""Page selection for PDFs: `--pages 1-3,7,10-` parsed, checked against a page count, and
page numbers written back the way people read them ("1-3, 7").

Pure and light, so the command can check its `--pages` flag before anything else loads.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from llmtools.errors import UsageError

_RANGE = re.compile(r"^\s*(\d*)\s*(-?)\s*(\d*)\s*$")


def parse_page_ranges(spec: str) -> list[tuple[int, int | None]]:
    """`1-3,7,10-` as [(1, 3), (7, 7), (10, None)]; None means "to the last page"."""
    ranges: list[tuple[int, int | None]] = []
    for item in spec.split(","):
        match = _RANGE.match(item)
        if not match or not (match.group(1) or match.group(3)) or (not match.group(2) and not match.group(1)):
            raise UsageError(f"--pages {spec}: {item.strip()!r} is not a page or a range such as 1-3, 7 or 10-")
        first = int(match.group(1)) if match.group(1) else 1
        last: int | None
        if match.group(2):
            last = int(match.group(3)) if match.group(3) else None
        else:
            last = first
        if first < 1 or (last is not None and last < first):
            raise UsageError(f"--pages {spec}: {item.strip()!r} is not a valid range (pages count from 1)")
        ranges.append((first, last))
    return ranges


def select_pages(ranges: Sequence[tuple[int, int | None]] | None,
                 page_count: int) -> tuple[list[int], list[tuple[int, int]]]:
    """(pages that exist, in document order without repeats; requested ranges beyond the end).

    Each range is clipped to the document before anything is enumerated, so what it costs
    is what the document has: `--pages 1-999999999999` of a 3-page PDF is 3 pages and one
    missing range, not a trillion numbers.
    """
    if not ranges:
        return list(range(1, page_count + 1)), []
    wanted: set[int] = set()
    beyond: list[tuple[int, int]] = []
    for first, last in ranges:
        end = page_count if last is None else last
        wanted.update(range(first, min(end, page_count) + 1))
        if last is None and first > page_count:
            beyond.append((first, first))
        elif last is not None and last > page_count:
            beyond.append((max(first, page_count + 1), last))
    return sorted(wanted), _merged(beyond)


def _merged(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for first, last in sorted(ranges):
        if merged and first <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], last))
        else:
            merged.append((first, last))
    return merged


def describe_ranges(ranges: Sequence[tuple[int, int]]) -> str:
    """[(1, 3), (7, 7)] as "1-3, 7"."""
    return ", ".join(str(first) if first == last else f"{first}-{last}" for first, last in ranges)


def describe_pages(numbers: Sequence[int]) -> str:
    """[1, 2, 3, 7] as "1-3, 7"."""
    parts: list[str] = []
    index = 0
    while index < len(numbers):
        start = index
        while index + 1 < len(numbers) and numbers[index + 1] == numbers[index] + 1:
            index += 1
        first, last = numbers[start], numbers[index]
        parts.append(str(first) if first == last else f"{first}-{last}")
        index += 1
    return ", ".join(parts)


def pages_phrase(numbers: Sequence[int]) -> str:
    return ("pages " if len(numbers) > 1 else "page ") + describe_pages(numbers)
