"""Hostile inputs for the bomb tests and scripts/bench_bombs.py, built here byte by byte.

Each is small on disk and huge once opened: a PDF whose page is 200 inches square (a
3.6 gigapixel render at OCR resolution), a PDF of 20,000 pages, a PDF whose content
stream inflates 1000-fold, a gzip body that inflates to gigabytes, and HTML nested
100,000 elements deep.
"""

from __future__ import annotations

import zlib


def _pdf(objects: list[bytes]) -> bytes:
    """A PDF of `objects` (object 1 the catalog), with an exact xref table."""
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def _stream(data: bytes, *, deflate: bool = False) -> bytes:
    if deflate:
        data = zlib.compress(data, 9)
        return b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(data) + data + b"\nendstream"
    return b"<< /Length %d >>\nstream\n" % len(data) + data + b"\nendstream"


def huge_page_pdf(inches: int = 200) -> bytes:
    """One blank page `inches` square: nothing to read, so OCR would render it whole."""
    side = inches * 72
    return _pdf([b"<< /Type /Catalog /Pages 2 0 R >>",
                 b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
                 b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %d %d] /Contents 4 0 R >>" % (side, side),
                 _stream(b"")])


def many_pages_pdf(count: int = 20_000) -> bytes:
    """`count` small pages (poppler refuses a tree that names one page twice), sharing one
    content stream and font: about 100 bytes a page on disk."""
    content, font = count + 3, count + 4
    pages = [b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents %d 0 R"
             b" /Resources << /Font << /F1 %d 0 R >> >> >>" % (content, font) for _ in range(count)]
    kids = b" ".join(b"%d 0 R" % (3 + index) for index in range(count))
    return _pdf([b"<< /Type /Catalog /Pages 2 0 R >>",
                 b"<< /Type /Pages /Kids [" + kids + b"] /Count %d >>" % count,
                 *pages,
                 _stream(b"BT /F1 12 Tf 72 720 Td (page) Tj ET"),
                 b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"])


def inflating_pdf(megabytes: int = 1024) -> bytes:
    """One page whose content stream is ~1 MB deflated and `megabytes` MB of text inflated."""
    font = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"
    line = b"BT /F1 1 Tf 0 0 Td (" + b"A" * 1000 + b") Tj ET\n"
    compressor = zlib.compressobj(9)
    chunk = line * 1024  # ~1 MB
    deflated = b"".join(compressor.compress(chunk) for _ in range(megabytes)) + compressor.flush()
    contents = b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(deflated) + deflated + b"\nendstream"
    return _pdf([b"<< /Type /Catalog /Pages 2 0 R >>",
                 b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
                 b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
                 b" /Resources << /Font << /F1 5 0 R >> >> >>",
                 contents, font])


def gzip_bomb(megabytes: int = 2048) -> bytes:
    """A gzip body of zeros: ~2 MB on the wire, `megabytes` MB once decoded."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = b"\0" * (1 << 20)
    return b"".join(compressor.compress(block) for _ in range(megabytes)) + compressor.flush()


def nested_html(depth: int = 100_000) -> bytes:
    return (b"<!doctype html><html><head><title>deep</title></head><body>" + b"<div>" * depth
            + b"<p>bottom</p>" + b"</div>" * depth + b"</body></html>")
