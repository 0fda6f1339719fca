"""llm-pdf: PDF files and URLs to text messages (see llm-pdf(1))."""

from __future__ import annotations

import functools
import sys

import click

from llmtools.cli.main import run
from llmtools.cli.options import command as llmtools_command
from llmtools.cli.options import content_output_options, url_timeout_option
from llmtools.cli.output import read_stdin_bytes, stdin_is_piped, write_content
from llmtools.errors import LlmtoolsError, UsageError
from llmtools.terminal import can_redraw, rewrite_stderr_line

OCR_MODES = ("auto", "always", "never")  # as llmtools.content.pdf.OCR_MODES, without importing it
# Progress is worth a line only when the wait is long enough to wonder about.
TEXT_PROGRESS_MIN_PAGES = 20
OCR_PROGRESS_MIN_PAGES = 2


class ProgressReport:
    """Progress on stderr: one line rewritten in place on a terminal, else sparse lines."""

    def __init__(self, prog: str, label: str, *, quiet: bool) -> None:
        self.prog = prog
        self.label = label
        self.quiet = quiet
        self.terminal = can_redraw(sys.stderr)
        self.last_tenth: dict[str, int] = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        minimum = OCR_PROGRESS_MIN_PAGES if stage == "ocr" else TEXT_PROGRESS_MIN_PAGES
        if self.quiet or total < minimum:
            return
        what = "OCR" if stage == "ocr" else "text"
        line = f"{self.prog}: {self.label}: {what} {done}/{total} pages"
        if self.terminal:
            rewrite_stderr_line(line, final=done == total)
            return
        # In a log, every OCR page (seconds apart) but only each tenth of a text run.
        tenth = done * 10 // total
        if stage == "ocr" or tenth > self.last_tenth.get(stage, 0):
            self.last_tenth[stage] = tenth
            print(line, file=sys.stderr, flush=True)


def _check_pages(ctx, param, value: str | None) -> str | None:
    if value is not None:
        from llmtools.content.pdf import parse_page_ranges

        try:
            parse_page_ranges(value)
        except UsageError as error:
            raise click.BadParameter(str(error).removeprefix(f"--pages {value}: ")) from None
    return value


@llmtools_command("llm-pdf")
@click.argument("inputs", nargs=-1, metavar="FILE|URL...")
@click.option("--pages", metavar="LIST", callback=_check_pages,
              help="Only these pages, e.g. 1-3,7 or 10- (counting from 1).")
@click.option("--ocr", type=click.Choice(OCR_MODES), default="auto", show_default=True,
              help="OCR pages whose text layer is missing or garbage (auto), every page, or none.")
@click.option("--lang", "language", default="eng", show_default=True, metavar="LANGS",
              help="Tesseract language(s) for OCR, e.g. eng or deu+eng.")
@url_timeout_option("For URLs: give up after this long.")
@click.option("--cookies", "cookies_file", metavar="FILE",
              help="For URLs: send the cookies in FILE (Netscape cookies.txt format).")
@click.option("-q", "--quiet", is_flag=True, help="No progress lines on stderr.")
@content_output_options(text_help="the text")
def command(inputs: tuple[str, ...], pages: str | None, ocr: str, language: str, url_timeout: float,
            cookies_file: str | None, quiet: bool, output_format: str | None, raw: bool) -> int:
    """Extract the text of PDFs, page by page, as user messages (one per PDF).

    FILE may be - for stdin; with no FILE, a PDF piped to stdin is read. Pages are
    separated by form feeds. A PDF that fails is reported on stderr and the others
    still come out.
    """
    names = list(inputs)
    if not names:
        if not stdin_is_piped():
            raise UsageError("no PDF given (name files or URLs, or pipe a PDF to stdin)")
        names = ["-"]
    if names.count("-") > 1:
        raise UsageError("stdin (-) can be read only once")
    cookies = None
    if cookies_file:
        from llmtools.content.cookies import load_cookies_txt

        cookies = load_cookies_txt(cookies_file)
    extract = functools.partial(_extract, pages=pages, ocr=ocr, language=language, timeout=url_timeout,
                                cookies=cookies, quiet=quiet)
    return write_content(map(extract, names), output_format, raw=raw)


def _extract(name: str, *, pages: str | None, ocr: str, language: str, timeout: float, cookies,
             quiet: bool) -> dict | LlmtoolsError:
    """The message for one PDF, or the error (naming the PDF) that stands in its place."""
    from llmtools.content import pdf
    from llmtools.content.fetch import fetch_pdf_bytes
    from llmtools.inputs import is_url
    from llmtools.notices import program_name

    label = "stdin" if name == "-" else name
    try:
        if name == "-":
            data = read_stdin_bytes()
            if not data:
                raise UsageError("stdin: no input at all (name files or URLs, or pipe a PDF to stdin)")
        elif is_url(name):
            data = fetch_pdf_bytes(name, timeout=timeout, cookies=cookies)
        else:
            data = pdf.read_pdf_file(name)
        return pdf.pdf_message(data, source=None if name == "-" else name, pages=pages, ocr=ocr,
                               language=language, progress=ProgressReport(program_name(), label, quiet=quiet))
    except LlmtoolsError as error:
        text = str(error)
        if text.startswith(label + ":"):
            return error
        return LlmtoolsError(f"{label}: {text}", status=error.status)


def main() -> None:
    run(command)
