"""Bounds for hostile PDFs: what a small file may cost once opened.

- Compressed streams: a few megabytes of FlateDecode can inflate to gigabytes of page
  content, which poppler would parse (and turn into text) for minutes. Before poppler sees
  the file, every Flate stream is inflated here in small pieces, output discarded, and a
  file whose streams come to more than MAX_INFLATED_BYTES is refused. Image XObjects are
  not counted (a scan's page images are hundreds of MB inflated; pdftotext never decodes
  them, and OCR renders are bounded below), unless a page uses one as its /Contents.
- Pages: at most MAX_PAGES are read in one go (`--pages` picks others).
- OCR renders: a page is rendered at OCR_DPI unless that would pass MAX_RENDER_PIXELS (a
  200-inch poster would be 3.6 gigapixels); then at the resolution that fits, and not at
  all below MIN_OCR_DPI, where no text could be read anyway.
"""

from __future__ import annotations

import math
import re
import subprocess
import zlib

from llmtools.errors import InputError

MAX_INFLATED_BYTES = 256 << 20
MAX_PAGES = 10_000
MAX_RENDER_PIXELS = 100_000_000  # 100 MB as an 8-bit grayscale image
MIN_OCR_DPI = 72
_PIECE = 1 << 20

_STREAM_START = re.compile(rb"stream\r?\n")
_FLATE = re.compile(rb"/FlateDecode|/Fl\b")
_IMAGE = re.compile(rb"/Subtype\s*/Image\b")
_OBJECT_STREAM = re.compile(rb"/Type\s*/ObjStm\b")
_OBJECT_START = re.compile(rb"(\d+)\s+\d+\s+obj\b")
_CONTENTS = re.compile(rb"/Contents\s*(\[[^\]]*\]|\d+\s+\d+\s+R)")
_REFERENCE = re.compile(rb"(\d+)\s+\d+\s+R")
_DICTIONARY_REACH = 4096
_OBJECT_STREAM_READ = 16 << 20  # far more than the page dictionaries an object stream holds


def check_inflated_size(data: bytes, label: str, budget: int = MAX_INFLATED_BYTES) -> None:
    """InputError if the file's Flate streams inflate to more than `budget` bytes in all.

    Image XObjects are left out: pdftotext never decodes them and OCR renders are bounded
    by `ocr_dpi`, while a scan's 300-dpi page images inflate to megabytes each. A stream
    that calls itself an image but is some page's /Contents is counted all the same."""
    total = 0
    images = []
    as_contents = _contents_references(data)
    for match in _STREAM_START.finditer(data):
        dictionary, number = _stream_dictionary(data, match.start())
        if not _FLATE.search(dictionary):
            continue
        if _IMAGE.search(dictionary):
            images.append((match.end(), number))
            continue
        if _OBJECT_STREAM.search(dictionary):  # where PDF 1.5 writers put page dictionaries
            as_contents |= _contents_references(
                _inflated(data, match.end(), min(_OBJECT_STREAM_READ, budget - total + 1)))
        total += _inflated_size(data, match.end(), budget - total)
        _refuse_over(total, budget, label)
    for start, number in images:
        if number is None or number in as_contents:
            total += _inflated_size(data, start, budget - total)
            _refuse_over(total, budget, label)


def _refuse_over(total: int, budget: int, label: str) -> None:
    if total > budget:
        raise InputError(
            f"{label}: a decompression bomb: its compressed streams expand to more than "
            f"{budget >> 20} MB (refused before reading it)")


def _stream_dictionary(data: bytes, stream_keyword: int) -> tuple[bytes, int | None]:
    """(the dictionary before a `stream` keyword, the number of its object if found)."""
    before = data[max(0, stream_keyword - _DICTIONARY_REACH):stream_keyword]
    starts = list(_OBJECT_START.finditer(before))
    if starts:
        dictionary = before[starts[-1].end():]
        ended = dictionary.rfind(b"endobj")
        # A dictionary longer than the reach: the object named is an earlier one.
        return (dictionary, int(starts[-1].group(1))) if ended < 0 else (dictionary[ended:], None)
    header = before[-512:]
    return (header[header.rfind(b"<<"):] if b"<<" in header else header), None


def _contents_references(text: bytes) -> set[int]:
    """Numbers of the objects that the page dictionaries in `text` name as their /Contents."""
    return {int(number) for found in _CONTENTS.finditer(text) for number in _REFERENCE.findall(found.group(1))}


def _inflated(data: bytes, start: int, limit: int) -> bytes:
    """At most `limit` bytes of what one zlib stream starting at `start` inflates to."""
    try:
        return zlib.decompressobj().decompress(data[start:start + limit], limit)
    except zlib.error:
        return b""


def _inflated_size(data: bytes, start: int, budget: int) -> int:
    """Bytes one zlib stream starting at `start` inflates to, counting no further than
    `budget` + 1; 0 for what is not zlib data after all."""
    inflater = zlib.decompressobj()
    produced = 0
    position = start
    try:
        while not inflater.eof and produced <= budget:
            piece = inflater.unconsumed_tail
            if not piece:
                if position >= len(data):
                    break
                piece = data[position:position + _PIECE]
                position += _PIECE
            produced += len(inflater.decompress(piece, _PIECE))
    except zlib.error:
        pass  # damaged or not Flate after all: poppler will say what it makes of it
    return produced


def check_page_count(count: int, label: str) -> None:
    if count > MAX_PAGES:
        raise InputError(f"{label}: {count} pages to read, more than {MAX_PAGES} at once; "
                         "choose some with --pages (or split the PDF)")


def ocr_dpi(path: str, number: int, wanted: int) -> int:
    """The resolution to render page `number` at for OCR: `wanted`, or less for a page so
    large that `wanted` would pass MAX_RENDER_PIXELS. InputError when even MIN_OCR_DPI
    would not fit."""
    size = _page_size_points(path, number)
    if size is None:
        return wanted
    width_in, height_in = size[0] / 72, size[1] / 72
    fitting = math.sqrt(MAX_RENDER_PIXELS / max(width_in * height_in, 1e-9))
    if fitting >= wanted:
        return wanted
    if fitting < MIN_OCR_DPI:
        raise InputError(f"page {number}: {width_in:.0f} x {height_in:.0f} inches is too large to OCR "
                         f"(it would take over {MAX_RENDER_PIXELS // 1_000_000} million pixels at "
                         f"{MIN_OCR_DPI} dpi)")
    return int(fitting)


def _page_size_points(path: str, number: int) -> tuple[float, float] | None:
    try:
        result = subprocess.run(["pdfinfo", "-f", str(number), "-l", str(number), path],
                                capture_output=True, check=False, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = re.search(rb"Page\s+\d+\s+size:\s+([\d.]+)\s+x\s+([\d.]+)\s+pts", result.stdout)
    if not found:
        found = re.search(rb"Page size:\s+([\d.]+)\s+x\s+([\d.]+)\s+pts", result.stdout)
    return (float(found.group(1)), float(found.group(2))) if found else None
