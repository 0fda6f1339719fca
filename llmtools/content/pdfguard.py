"""Bounds for hostile PDFs: what a small file may cost once opened.

- Compressed streams: a few megabytes of FlateDecode can inflate to gigabytes of page
  content, which poppler would parse (and turn into text) for minutes. Before poppler sees
  the file, every Flate stream is inflated here in small pieces, output discarded, and a
  file whose streams come to more than MAX_INFLATED_BYTES is refused.
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


def check_inflated_size(data: bytes, label: str, budget: int = MAX_INFLATED_BYTES) -> None:
    """InputError if the file's Flate streams inflate to more than `budget` bytes in all."""
    total = 0
    for match in _STREAM_START.finditer(data):
        header = data[max(0, match.start() - 512):match.start()]
        if not _FLATE.search(header[header.rfind(b"<<"):] if b"<<" in header else header):
            continue
        total += _inflated_size(data, match.end(), budget - total)
        if total > budget:
            raise InputError(
                f"{label}: a decompression bomb: its compressed streams expand to more than "
                f"{budget >> 20} MB (refused before reading it)")


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
