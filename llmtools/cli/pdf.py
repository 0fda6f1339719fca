"""llm-pdf: PDF files and URLs to text messages (see llm-pdf(1))."""

from __future__ import annotations

import sys

import click

from llmtools.cli.main import debug_option, error_line, run
from llmtools.cli.output import output_option, stdin_is_piped, stdout_is_terminal, write_messages
from llmtools.errors import LlmtoolsError, UsageError

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
        try:
            self.terminal = sys.stderr.isatty()
        except (AttributeError, ValueError):
            self.terminal = False
        self.last_tenth: dict[str, int] = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        minimum = OCR_PROGRESS_MIN_PAGES if stage == "ocr" else TEXT_PROGRESS_MIN_PAGES
        if self.quiet or total < minimum:
            return
        what = "OCR" if stage == "ocr" else "text"
        line = f"{self.prog}: {self.label}: {what} {done}/{total} pages"
        if self.terminal:
            sys.stderr.write("\r" + line + "\x1b[K" + ("\n" if done == total else ""))
            sys.stderr.flush()
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


@click.command(name="llm-pdf", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("inputs", nargs=-1, metavar="FILE|URL...")
@click.option("--pages", metavar="LIST", callback=_check_pages,
              help="Only these pages, e.g. 1-3,7 or 10- (counting from 1).")
@click.option("--ocr", type=click.Choice(OCR_MODES), default="auto", show_default=True,
              help="OCR pages whose text layer is missing or garbage (auto), every page, or none.")
@click.option("--lang", "language", default="eng", show_default=True, metavar="LANGS",
              help="Tesseract language(s) for OCR, e.g. eng or deu+eng.")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=30.0, show_default=True,
              metavar="SECONDS", help="For URLs: give up after this long.")
@click.option("--cookies", "cookies_file", metavar="FILE",
              help="For URLs: send the cookies in FILE (Netscape cookies.txt format).")
@click.option("-q", "--quiet", is_flag=True, help="No progress lines on stderr.")
@output_option("Default: a stack (JSON Lines) unless stdout is a terminal, which gets the text.")
@debug_option
def command(inputs: tuple[str, ...], pages: str | None, ocr: str, language: str, timeout: float,
            cookies_file: str | None, quiet: bool, output_format: str | None) -> int:
    """Extract the text of PDFs, page by page, as user messages (one per PDF).

    FILE may be - for stdin; with no FILE, a PDF piped to stdin is read. Pages are
    separated by form feeds. A PDF that fails is reported on stderr and the others
    still come out.
    """
    from llmtools.content import pdf
    from llmtools.content.fetch import fetch_pdf_bytes, worst_status
    from llmtools.inputs import is_url

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

    prog = click.get_current_context().find_root().info_name or "llm-pdf"
    resolved_format = output_format or ("text" if stdout_is_terminal() else "jsonl")
    statuses = []
    wrote = False
    for name in names:
        label = "stdin" if name == "-" else name
        try:
            if name == "-":
                data = sys.stdin.buffer.read()
            else:
                data = fetch_pdf_bytes(name, timeout=timeout, cookies=cookies) if is_url(name) else pdf.read_pdf_file(name)
            message = pdf.pdf_message(data, source=None if name == "-" else name, pages=pages, ocr=ocr,
                                      language=language, progress=ProgressReport(prog, label, quiet=quiet))
        except LlmtoolsError as error:
            statuses.append(int(error.status))
            text = str(error)
            click.echo(error_line(prog, text if text.startswith(label + ":") else f"{label}: {text}"), err=True)
            continue
        statuses.append(0)
        if wrote and resolved_format == "text":
            sys.stdout.write("\n")
        write_messages([message], resolved_format, content_default=True)
        wrote = True
    return worst_status(statuses)


def main() -> None:
    run(command)
