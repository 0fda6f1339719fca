"""PDF bytes to text, page by page, with OCR for pages that have no usable text layer.

The text layer is read with poppler: the `pdftotext` Python bindings when they are
installed, else poppler's `pdftotext`/`pdfinfo` programs. A page whose text layer is
missing (a scan: poppler returns nothing but the form feed) or garbage (glyphs with no
Unicode mapping come out as control or private-use characters) is rendered with
`pdftoppm` at 300 dpi and read by tesseract through `pytesseract`.

Pages are joined with a form feed ("\\f"), the separator `pdftotext` itself uses, so
`text.split("\\f")` gives the pages back. Heavy imports (the bindings, pytesseract and
with it Pillow) happen inside the functions that need them. Pages that are missing or
left unread are warned about on the notice channel (`llmtools.notices`). This module
takes bytes and never reads stdin: the command does that.
"""

from __future__ import annotations

import dataclasses
import io
import os
import shutil
import subprocess
import tempfile
import unicodedata
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed

from llmtools import detect, stack
from llmtools.content import pdfguard
from llmtools.content.pages import (
    describe_ranges,
    pages_phrase,
    parse_page_ranges,
    select_pages,
)
from llmtools.errors import InputError, ServiceUnavailable, UsageError
from llmtools.notices import warn

OCR_MODES = ("auto", "always", "never")
OCR_DPI = 300  # tesseract reads 10-12 pt type reliably from 300 dpi renderings
PAGE_SEPARATOR = "\f"
# A text layer shorter than this on a page that also carries a large image is probably a
# scan with a stamped page number or watermark: in auto mode such a page is OCRed too,
# and the longer of the two readings is kept. Short pages without images (title pages)
# are left alone.
MIN_TEXT_CHARS = 16
SCAN_IMAGE_MIN_PIXELS = 400 * 400
TESSERACT_TIMEOUT_S = 300

# progress(stage, done, total): stage is "text" (reading text layers) or "ocr".
Progress = Callable[[str, int, int], None]


@dataclasses.dataclass
class PageText:
    number: int  # 1-based, as people count pages
    text: str
    ocr: bool = False  # True when the text came from OCR rather than the text layer


@dataclasses.dataclass
class PdfText:
    page_count: int
    pages: list[PageText]

    @property
    def text(self) -> str:
        return PAGE_SEPARATOR.join(page.text for page in self.pages)

    @property
    def ocr_pages(self) -> list[int]:
        return [page.number for page in self.pages if page.ocr]


# --- text layer quality ---------------------------------------------------------

_ALLOWED_CONTROLS = set("\n\r\t\f")


def text_layer_problem(text: str) -> str | None:
    """Why a page's text layer cannot be trusted ("missing", "short", "garbage"), or None.

    "garbage" is what fonts without a Unicode mapping produce: control characters,
    private-use code points, U+FFFD, or a soup of symbols with hardly a letter in it.
    """
    visible = [char for char in text if not char.isspace()]
    if not visible:
        return "missing"
    unreadable = sum(
        1 for char in visible
        if char == "\ufffd" or (unicodedata.category(char) in ("Cc", "Co", "Cn", "Cs")
                                and char not in _ALLOWED_CONTROLS)
    )
    if unreadable / len(visible) > 0.1:
        return "garbage"
    alphanumeric = sum(1 for char in visible if char.isalnum())
    if len(visible) >= 8 and alphanumeric / len(visible) < 0.5:
        return "garbage"
    if len(visible) < MIN_TEXT_CHARS:
        return "short"
    return None


# --- reading the text layer ------------------------------------------------------


def _looks_encrypted(data: bytes) -> bool:
    # The trailer of an encrypted PDF names its security handler with /Encrypt.
    return b"/Encrypt" in data


class _TextLayer:
    """Page count and per-page text, from the poppler bindings or poppler's programs."""

    def __init__(self, data: bytes, path: str, label: str) -> None:
        self.label = label
        self.path = path
        self._document = None
        self._cli_pages: list[str] | None = None
        try:
            import pdftotext  # poppler-cpp bindings; optional
        except ImportError:
            self.page_count = self._cli_open()
            return
        try:
            self._document = pdftotext.PDF(io.BytesIO(data))
        except pdftotext.Error as error:
            raise self._open_error(str(error), data) from None
        self.page_count = len(self._document)

    def _open_error(self, detail: str, data: bytes) -> InputError:
        if "unlock" in detail or "password" in detail.lower() or _looks_encrypted(data):
            return InputError(f"{self.label}: encrypted PDF (it needs a password); "
                              "decrypt it first, e.g. with qpdf --decrypt")
        return InputError(f"{self.label}: not a readable PDF (corrupt or truncated)")

    def _cli_open(self) -> int:
        if not shutil.which("pdftotext"):
            raise ServiceUnavailable("poppler is not installed: neither the pdftotext Python package "
                                     "nor the pdftotext program (poppler-utils) was found")
        result = subprocess.run(["pdftotext", "-enc", "UTF-8", self.path, "-"],
                                capture_output=True, check=False)
        if result.returncode != 0:
            detail = result.stderr.decode("utf-8", "replace")
            if "page count 0" in detail or "Wrong page range" in detail:
                return 0
            with open(self.path, "rb") as handle:
                raise self._open_error(detail, handle.read()) from None
        pages = result.stdout.decode("utf-8", "replace").split("\f")
        # pdftotext ends every page with a form feed, so the last piece is what follows
        # the last page: nothing.
        self._cli_pages = pages[:-1] if pages and not pages[-1].strip() else pages
        return len(self._cli_pages)

    def page(self, number: int) -> str:
        if self._document is not None:
            text = self._document[number - 1]
        else:
            assert self._cli_pages is not None
            text = self._cli_pages[number - 1]
        return text.replace("\f", "").strip("\n")


def _pages_with_large_images(path: str) -> set[int]:
    """Pages that show an image big enough to be a scan, from `pdfimages -list`."""
    if not shutil.which("pdfimages"):
        return set()
    result = subprocess.run(["pdfimages", "-list", path], capture_output=True, check=False)
    pages: set[int] = set()
    for line in result.stdout.decode("utf-8", "replace").splitlines()[2:]:
        fields = line.split()
        # page num type width height ...; "smask" and "stencil" rows are not pictures.
        if len(fields) > 4 and fields[2] == "image" and fields[0].isdigit():
            if int(fields[3]) * int(fields[4]) >= SCAN_IMAGE_MIN_PIXELS:
                pages.add(int(fields[0]))
    return pages


# --- OCR ------------------------------------------------------------------------


class OcrUnavailable(ServiceUnavailable):
    pass


def _check_ocr_tools() -> None:
    try:
        import pytesseract
    except ImportError:
        raise OcrUnavailable("OCR needs the pytesseract Python package") from None
    if not shutil.which(pytesseract.pytesseract.tesseract_cmd):
        raise OcrUnavailable("OCR needs tesseract (Debian: apt-get install tesseract-ocr tesseract-ocr-eng)")
    if not shutil.which("pdftoppm"):
        raise OcrUnavailable("OCR needs pdftoppm to render pages (Debian: apt-get install poppler-utils)")


def _ocr_page(path: str, number: int, workdir: str, language: str) -> str:
    import pytesseract

    prefix = os.path.join(workdir, f"page-{number}")
    # Grayscale PGM: tesseract binarizes anyway, and PGM skips PNG compression both ways.
    dpi = pdfguard.ocr_dpi(path, number, OCR_DPI)
    render = subprocess.run(
        ["pdftoppm", "-r", str(dpi), "-gray", "-f", str(number), "-l", str(number),
         "-singlefile", path, prefix],
        capture_output=True, check=False)
    image = prefix + ".pgm"
    if render.returncode != 0 or not os.path.exists(image):
        detail = " ".join(render.stderr.decode("utf-8", "replace").split()) or f"status {render.returncode}"
        raise InputError(f"page {number}: pdftoppm could not render it: {detail}")
    try:
        text = pytesseract.image_to_string(image, lang=language, timeout=TESSERACT_TIMEOUT_S)
    except pytesseract.TesseractError as error:
        raise OcrUnavailable(f"tesseract failed on page {number}: {' '.join(str(error.message).split())}") from None
    except RuntimeError as error:  # pytesseract's timeout
        raise OcrUnavailable(f"tesseract took over {TESSERACT_TIMEOUT_S} s on page {number}: {error}") from None
    finally:
        try:
            os.unlink(image)
        except OSError:
            pass
    return text.replace("\f", "").strip()


def _ocr_pages(path: str, numbers: list[int], language: str, workers: int | None,
               progress: Progress | None, on_page_error: Callable[[InputError], None]) -> dict[int, str]:
    """OCR several pages at once: each page is two subprocesses, so threads overlap them.

    A page that cannot be rendered is reported through `on_page_error` and left out;
    OcrUnavailable (tesseract itself failing) stops the lot.
    """
    # Tesseract's OpenMP threads fight each other on a small machine; one thread per
    # process with one process per core is ~3x faster (setdefault: a user's choice wins).
    os.environ.setdefault("OMP_THREAD_LIMIT", "1")
    workers = workers or max(1, min(len(numbers), os.cpu_count() or 1))
    results: dict[int, str] = {}
    with tempfile.TemporaryDirectory(prefix="llmtools-ocr-") as workdir, \
            ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(_ocr_page, path, number, workdir, language): number for number in numbers}
        try:
            for done, future in enumerate(as_completed(futures), start=1):
                try:
                    results[futures[future]] = future.result()
                except InputError as error:
                    on_page_error(error)
                if progress:
                    progress("ocr", done, len(numbers))
        except BaseException:
            for future in futures:
                future.cancel()
            raise
    return results


# --- the whole document -----------------------------------------------------------


def extract_pdf(
    data: bytes,
    *,
    source: str | None = None,
    pages: str | Sequence[tuple[int, int | None]] | None = None,
    ocr: str = "auto",
    language: str = "eng",
    progress: Progress | None = None,
    workers: int | None = None,
) -> PdfText:
    """Text of the selected pages of a PDF given as bytes.

    `pages` is a spec such as "1-3,7" or parsed ranges; `ocr` is "auto" (pages whose text
    layer is missing or garbage, or short on a page showing a large image), "always" or
    "never". `workers` caps the pages OCRed at once (default: one per core).

    Raises InputError (65) for encrypted, corrupt and zero-page PDFs, UsageError (2) when
    no requested page exists, ServiceUnavailable (69) when `ocr="always"` and OCR cannot run.
    """
    if ocr not in OCR_MODES:
        raise UsageError(f"--ocr must be one of {', '.join(OCR_MODES)} (got {ocr!r})")
    label = source or "stdin"
    if not detect.is_pdf(data, strict=False):
        raise InputError(f"{label}: not a PDF (it does not start with %PDF-)")
    ranges = parse_page_ranges(pages) if isinstance(pages, str) else pages

    with tempfile.TemporaryDirectory(prefix="llmtools-pdf-") as workdir:
        # pdftoppm and poppler's programs read files, not pipes: one private copy serves all.
        path = os.path.join(workdir, "document.pdf")
        with open(path, "wb") as handle:
            handle.write(data)
        pdfguard.check_inflated_size(data, label)
        layer = _TextLayer(data, path, label)
        numbers = _pages_to_read(layer, ranges)
        pdfguard.check_page_count(len(numbers), label)
        texts, needs_ocr = _read_text_layer(layer, numbers, ocr, progress)
        if needs_ocr:
            _read_by_ocr(texts, needs_ocr, path, label, ocr, language, workers, progress)
        elif ocr == "never":
            empty = [n for n in numbers if text_layer_problem(texts[n].text) == "missing"]
            if empty:
                warn(f"{label}: no text layer on {pages_phrase(empty)} (--ocr auto would read them)")
    return PdfText(page_count=layer.page_count, pages=[texts[n] for n in numbers])


def _pages_to_read(layer: _TextLayer, ranges: Sequence[tuple[int, int | None]] | None) -> list[int]:
    """The selected pages that exist; a warning for those that do not, an error if none do."""
    label = layer.label
    if layer.page_count == 0:
        raise InputError(f"{label}: the PDF has no pages")
    numbers, missing = select_pages(ranges, layer.page_count)
    if missing:
        if not numbers:
            raise UsageError(f"{label}: --pages: no page {describe_ranges(missing)} in a PDF of "
                             f"{layer.page_count} page{'s' if layer.page_count != 1 else ''}")
        warn(f"{label}: no page {describe_ranges(missing)} (the PDF has {layer.page_count})")
    return numbers


def _read_text_layer(layer: _TextLayer, numbers: list[int], ocr: str,
                     progress: Progress | None) -> tuple[dict[int, PageText], list[int]]:
    """Each page's text layer, and the pages to OCR (in order) under the `ocr` mode."""
    texts: dict[int, PageText] = {}
    needs_ocr: list[int] = []
    short: list[int] = []
    for done, number in enumerate(numbers, start=1):
        text = layer.page(number)
        texts[number] = PageText(number, text)
        problem = text_layer_problem(text)
        if ocr == "always" or (ocr == "auto" and problem in ("missing", "garbage")):
            needs_ocr.append(number)
        elif ocr == "auto" and problem == "short":
            short.append(number)
        if progress:
            progress("text", done, len(numbers))
    if short:
        scans = _pages_with_large_images(layer.path)
        needs_ocr = sorted(needs_ocr + [number for number in short if number in scans])
    return texts, needs_ocr


def _read_by_ocr(texts: dict[int, PageText], numbers: list[int], path: str, label: str, ocr: str,
                 language: str, workers: int | None, progress: Progress | None) -> None:
    """Replace the text layer of `numbers` in `texts` by what OCR reads, where it reads better.

    Without OCR tools, `ocr="always"` fails; "auto" warns about the pages left unread.
    """
    try:
        _check_ocr_tools()
        ocr_texts = _ocr_pages(path, numbers, language, workers, progress,
                               lambda error: warn(f"{label}: {error}"))
    except OcrUnavailable as error:
        if ocr == "always":
            raise
        unreadable = [n for n in numbers if text_layer_problem(texts[n].text) in ("missing", "garbage")]
        if unreadable:
            warn(f"{label}: {error}; {pages_phrase(unreadable)} left as the text layer has it")
        return
    for number, ocr_text in ocr_texts.items():
        layer_text = texts[number].text
        problem = text_layer_problem(layer_text)
        # A short text layer may be the whole page (a title page): keep it unless OCR
        # found more. Missing or garbage layers always give way to OCR.
        if ocr == "always" or problem in ("missing", "garbage") or len(ocr_text) > len(layer_text):
            texts[number] = PageText(number, ocr_text, ocr=True)


def pdf_message(
    data: bytes,
    source: str | None = None,
    *,
    pages: str | Sequence[tuple[int, int | None]] | None = None,
    ocr: str = "auto",
    language: str = "eng",
    progress: Progress | None = None,
    tool: str = "llm-pdf",
) -> dict:
    """One user message with the PDF's text (pages joined by form feeds).

    meta: `source`, `tool`, `page_count`, `pages` (only when a subset was selected) and
    `ocr_pages` (the pages read by OCR, when there are any).
    """
    result = extract_pdf(data, source=source, pages=pages, ocr=ocr, language=language,
                         progress=progress)
    selected = [page.number for page in result.pages]
    return stack.message(
        "user", result.text,
        source=source,
        tool=tool,
        page_count=result.page_count,
        pages=selected if len(selected) != result.page_count else None,
        ocr_pages=result.ocr_pages or None,
    )


def read_pdf_file(path: str) -> bytes:
    """A PDF file's bytes; a missing or unreadable file is a usage error. (stdin, "-", is the
    command's to read: core code does not touch it.)"""
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except IsADirectoryError:
        raise UsageError(f"{path}: is a directory") from None
    except OSError as error:
        raise UsageError(f"{path}: {error.strerror}") from None
