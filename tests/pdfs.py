"""PDFs for the tests, written here rather than shipped as opaque binaries.

A small hand-written PDF writer (a catalog, a page tree, Helvetica text pages and
grayscale image pages, an exact xref table) is enough for poppler and makes every byte
of a test input explainable. "Scanned" pages are text drawn by Pillow onto a 300 dpi
bitmap, so the OCR path meets the same kind of input a scanner produces. Encryption
comes from pypdf, a real PDF library, so the encrypted file is what poppler will meet
in the wild rather than something we imagine an encrypted file to be.
"""

from __future__ import annotations

import io
import zlib
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFont

POINTS_WIDTH, POINTS_HEIGHT = 612, 792  # US Letter
SCAN_DPI = 300


@dataclass
class TextPage:
    lines: list[str]


@dataclass
class ImagePage:
    """A page that is one grayscale bitmap covering the whole page, as a scanner makes."""

    image: Image.Image


def _pdf_string(text: str) -> bytes:
    escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
    return b"(" + escaped.encode("cp1252") + b")"


def _stream(dictionary: bytes, data: bytes) -> bytes:
    return b"<< " + dictionary + b" /Length %d >>\nstream\n" % len(data) + data + b"\nendstream"


def write_pdf(pages: list[TextPage | ImagePage]) -> bytes:
    """Serialize pages into a complete PDF file (an empty list makes a zero-page PDF)."""
    objects: list[bytes] = [b"", b""]  # 1: catalog, 2: page tree, filled in at the end

    def add(body: bytes) -> int:
        objects.append(body)
        return len(objects)

    font = add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
    kids: list[int] = []
    for page in pages:
        if isinstance(page, TextPage):
            # 72 pt margins, 12 pt type on 16 pt leading, top line 72 pt below the top edge.
            ops = [b"BT /F1 12 Tf 16 TL 72 %d Td" % (POINTS_HEIGHT - 72)]
            for line in page.lines:
                ops.append(_pdf_string(line) + b" Tj T*")
            ops.append(b"ET")
            contents = add(_stream(b"", b"\n".join(ops)))
            resources = b"<< /Font << /F1 %d 0 R >> >>" % font
        else:
            image = page.image.convert("L")
            pixels = zlib.compress(image.tobytes(), 6)
            xobject = add(_stream(
                b"/Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceGray "
                b"/BitsPerComponent 8 /Filter /FlateDecode" % image.size, pixels))
            contents = add(_stream(b"", b"q %d 0 0 %d 0 0 cm /Scan Do Q" % (POINTS_WIDTH, POINTS_HEIGHT)))
            resources = b"<< /XObject << /Scan %d 0 R >> >>" % xobject
        kids.append(add(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %d %d] /Resources %s /Contents %d 0 R >>"
            % (POINTS_WIDTH, POINTS_HEIGHT, resources, contents)))
    objects[0] = b"<< /Type /Catalog /Pages 2 0 R >>"
    objects[1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (
        b" ".join(b"%d 0 R" % kid for kid in kids), len(kids))

    out = io.BytesIO()
    out.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")  # the binary comment marks the file as binary
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref_at = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref_at))
    return out.getvalue()


def scanned_page(lines: list[str], *, font_px: int = 44) -> ImagePage:
    """Text drawn onto a white 300 dpi page bitmap: a page with no text layer at all."""
    width, height = POINTS_WIDTH * SCAN_DPI // 72, POINTS_HEIGHT * SCAN_DPI // 72
    image = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=font_px)  # Pillow's bundled font: no system fonts needed
    y = SCAN_DPI  # one inch from the top
    for line in lines:
        draw.text((SCAN_DPI, y), line, fill=0, font=font)
        y += int(font_px * 1.6)
    return ImagePage(image)


def encrypt(pdf: bytes, user_password: str = "secret") -> bytes:
    """The same document locked with a user password (RC4, which pypdf does without extras)."""
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf)))
    writer.encrypt(user_password=user_password, owner_password="owner-" + user_password,
                   algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


# Sentences with ordinary English words, so the OCR check measures recognition of real
# text rather than tesseract's guesses at random strings.
SCAN_LINES = [
    "The harbour master counted eleven fishing boats",
    "returning before noon on the first calm morning",
    "of spring. Gulls followed the nets along the pier",
    "while the market opened its wooden stalls early.",
    "Fresh bread, salted butter and smoked herring sold",
    "quickly, and by evening the square was quiet again.",
]

TEXT_LINES = [
    "Quarterly report on river water quality",
    "Dissolved oxygen stayed above eight milligrams per litre",
    "at every station except the weir below the paper mill.",
    "Nitrate levels fell for the third quarter in a row.",
]


def words(lines: list[str]) -> list[str]:
    return " ".join(lines).replace(",", " ").replace(".", " ").lower().split()
