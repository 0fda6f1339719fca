"""llm-pdf: PDF files and URLs to text messages (see llm-pdf(1))."""

from __future__ import annotations

import functools
import time

import click

from llmtools.cli.main import run
from llmtools.cli.options import command as llmtools_command
from llmtools.cli.options import complete_paths, content_output_options, url_timeout_option
from llmtools.cli.output import read_stdin_bytes, stdin_is_piped, write_content
from llmtools.errors import LlmtoolsError, UsageError
from llmtools.progress import PAGES, CounterBar

OCR_MODES = ("auto", "always", "never")  # as llmtools.content.pdf.OCR_MODES, without importing it
# Progress is worth a line only when the wait is long enough to wonder about: by time,
# since a page of text takes milliseconds and a page of OCR seconds.
PROGRESS_AFTER_S = 1.0


class ProgressReport:
    """The extractor's `progress(stage, done, total)` calls as one bar per stage on stderr."""

    def __init__(self, label: str, *, quiet: bool) -> None:
        self.label = label
        self.quiet = quiet
        self.bars: dict[str, CounterBar] = {}
        self.started = time.monotonic()

    def __call__(self, stage: str, done: int, total: int) -> None:
        if self.quiet or time.monotonic() - self.started < PROGRESS_AFTER_S:
            return
        bar = self.bars.get(stage)
        if bar is None:
            # In a log, every OCR page (seconds apart) but only each tenth of a text run.
            bar = CounterBar(f"{self.label}: {'OCR' if stage == 'ocr' else 'text'}", unit=PAGES,
                             log_every=1 / total if stage == "ocr" else 0.1)
            bar.start(total)
            self.bars[stage] = bar
        bar.update(done)
        if done == total:
            bar.finish()


def _check_pages(ctx, param, value: str | None) -> str | None:
    if value is not None:
        from llmtools.content.pdf import parse_page_ranges

        try:
            parse_page_ranges(value)
        except UsageError as error:
            raise click.BadParameter(str(error).removeprefix(f"--pages {value}: ")) from None
    return value


@llmtools_command("llm-pdf")
@click.argument("inputs", nargs=-1, metavar="FILE|URL...", shell_complete=complete_paths)
@click.option("--pages", metavar="LIST", callback=_check_pages,
              help="Only these pages, e.g. 1-3,7 or 10- (counting from 1).")
@click.option("--ocr", type=click.Choice(OCR_MODES), default="auto", show_default=True,
              help="OCR pages whose text layer is missing or garbage (auto), every page, or none.")
@click.option("--lang", "language", default="eng", show_default=True, metavar="LANGS",
              help="Tesseract language(s) for OCR, e.g. eng or deu+eng.")
@url_timeout_option("For URLs: give up after this long.")
@click.option("--cookies", "cookies_file", metavar="FILE", shell_complete=complete_paths,
              help="For URLs: send the cookies in FILE (Netscape cookies.txt format).")
@click.option("-q", "--quiet", is_flag=True, help="No progress lines on stderr.")
@content_output_options(text_help="the text")
def command(inputs: tuple[str, ...], pages: str | None, ocr: str, language: str, url_timeout: float,
            cookies_file: str | None, quiet: bool, output_format: str | None, raw: bool) -> int:
    """Extract the text of PDFs, page by page, as user messages (one per PDF).

    FILE may be - for stdin; with no FILE, a PDF piped to stdin is read. Pages are
    separated by form feeds in a stack; as text (-o text, a terminal) by a `--- page N ---`
    line, and each PDF is headed `==> NAME <==` when there are several (as head(1) does).
    A PDF that fails is reported on stderr and the others still come out.
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
    return write_content(map(extract, names), output_format, raw=raw,
                         text_of=functools.partial(pdf_as_text, headed=len(names) > 1))


def pdf_as_text(message: dict, *, headed: bool) -> str:
    """A PDF's message as text to read: page lines instead of form feeds, and its name."""
    meta = message.get("meta") or {}
    texts = str(message["content"]).split("\f")
    numbers = meta.get("pages") or range(1, len(texts) + 1)
    parts = [texts[0]]
    for number, text in zip(list(numbers)[1:], texts[1:], strict=False):
        parts.append(f"\n--- page {number} ---\n{text}")
    body = "".join(parts)
    return f"==> {meta.get('source') or 'stdin'} <==\n{body}" if headed else body


def _extract(name: str, *, pages: str | None, ocr: str, language: str, timeout: float, cookies,
             quiet: bool) -> dict | LlmtoolsError:
    """The message for one PDF, or the error (naming the PDF) that stands in its place."""
    from llmtools.content import pdf
    from llmtools.content.fetch import fetch_pdf_bytes
    from llmtools.inputs import is_url

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
                               language=language, progress=ProgressReport(label, quiet=quiet))
    except LlmtoolsError as error:
        text = str(error)
        if text.startswith(label + ":"):
            return error
        return LlmtoolsError(f"{label}: {text}", status=error.status)


def main() -> None:
    run(command)
