"""llm-pdf on PDFs written by the tests: real poppler, real tesseract."""

from __future__ import annotations

import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from llmtools import stack
from llmtools.cli import pdf as pdf_cli
from llmtools.cli.main import run
from llmtools.content import pages, pdf
from llmtools.errors import ExitStatus, InputError, ServiceUnavailable, UsageError
from llmtools.notices import notices_to
from tests.conftest import command_path
from tests.pages import LocalSite
from tests.pdfs import SCAN_LINES, TEXT_LINES, TextPage, encrypt, scanned_page, words, write_pdf

SECOND_PAGE = ["Turbidity rose after the storm in week nine", "and settled within four days."]
SECOND_SCAN = ["Boats left again at dawn with fresh nets,", "and the harbour bell rang twice for luck."]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The test PDFs, written once per module (the scanned pages take a moment to draw)."""
    directory = tmp_path_factory.mktemp("pdfs")
    text_pdf = write_pdf([TextPage(TEXT_LINES), TextPage(SECOND_PAGE)])
    scans = [scanned_page(SCAN_LINES), scanned_page(SECOND_SCAN)]
    documents = {
        "text": text_pdf,
        "scanned": write_pdf(scans),
        "mixed": write_pdf([TextPage(TEXT_LINES), scans[0], TextPage(SECOND_PAGE)]),
        "encrypted": encrypt(text_pdf),
        "truncated": text_pdf[: len(text_pdf) // 2],
        "empty": write_pdf([]),
        "long": write_pdf([TextPage([f"This is page {n} of the long report."]) for n in range(1, 26)]),
    }
    paths = {}
    for name, data in documents.items():
        path = directory / f"{name}.pdf"
        path.write_bytes(data)
        paths[name] = path
    return paths


def extract(path, **options) -> pdf.PdfText:
    """extract_pdf, with the notices it gave collected as `result.warnings` (all warnings)."""
    told: list[tuple[str, str]] = []
    with notices_to(lambda level, message: told.append((level, message))):
        result = pdf.extract_pdf(path.read_bytes(), source=str(path), **options)
    assert {level for level, _ in told} <= {"warning"}, told
    result.warnings = [message for _, message in told]  # type: ignore[attr-defined]
    return result


def share_of_words_recovered(expected: list[str], text: str) -> float:
    found = set(text.replace(",", " ").replace(".", " ").lower().split())
    return sum(1 for word in expected if word in found) / len(expected)


def invoke(args: list[str], input: bytes | None = None):
    """Run llm-pdf in-process through the shared entry wrapper (exit statuses included)."""
    @click.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
    @click.pass_context
    def through_wrapper(ctx):
        run(pdf_cli.command, list(ctx.args), prog_name="llm-pdf")

    return CliRunner().invoke(through_wrapper, args, input=input, catch_exceptions=False)


# --- text, OCR, both ---------------------------------------------------------------------------


def test_text_pdf_gives_the_exact_words_page_by_page(files):
    result = extract(files["text"])
    assert result.page_count == 2
    assert [page.text for page in result.pages] == ["\n".join(TEXT_LINES), "\n".join(SECOND_PAGE)]
    assert result.text == "\n".join(TEXT_LINES) + "\f" + "\n".join(SECOND_PAGE)
    assert result.ocr_pages == []
    assert result.warnings == []


def test_scanned_pdf_is_read_by_ocr(files):
    progress: list[tuple] = []
    result = extract(files["scanned"], progress=lambda *event: progress.append(event))
    assert result.ocr_pages == [1, 2]
    first, second = (page.text for page in result.pages)
    assert share_of_words_recovered(words(SCAN_LINES), first) >= 0.9, first
    assert share_of_words_recovered(words(SECOND_SCAN), second) >= 0.9, second
    assert ("ocr", 2, 2) in progress


def test_mixed_pdf_ocrs_only_the_image_page(files):
    progress: list[tuple] = []
    result = extract(files["mixed"], progress=lambda *event: progress.append(event))
    assert result.ocr_pages == [2]
    assert [event for event in progress if event[0] == "ocr"] == [("ocr", 1, 1)]  # one page went to OCR
    assert result.pages[0].text == "\n".join(TEXT_LINES)
    assert result.pages[2].text == "\n".join(SECOND_PAGE)
    assert share_of_words_recovered(words(SCAN_LINES), result.pages[1].text) >= 0.9


def test_ocr_never_leaves_scans_empty_and_says_so(files):
    result = extract(files["mixed"], ocr="never")
    assert [page.text for page in result.pages] == ["\n".join(TEXT_LINES), "", "\n".join(SECOND_PAGE)]
    assert result.warnings == [f"{files['mixed']}: no text layer on page 2 (--ocr auto would read them)"]


def test_ocr_always_reads_text_pages_too(files):
    result = extract(files["text"], ocr="always", pages="1")
    assert result.ocr_pages == [1]
    assert share_of_words_recovered(words(TEXT_LINES), result.pages[0].text) >= 0.9


def test_missing_tesseract(files, monkeypatch):
    import pytesseract

    monkeypatch.setattr(pytesseract.pytesseract, "tesseract_cmd", "/nonexistent/tesseract")
    result = extract(files["mixed"])  # auto: the text pages still come out, with a warning
    assert result.pages[0].text == "\n".join(TEXT_LINES) and result.pages[1].text == ""
    assert len(result.warnings) == 1 and "OCR needs tesseract" in result.warnings[0]
    assert "page 2 left as the text layer has it" in result.warnings[0]
    with pytest.raises(ServiceUnavailable, match="OCR needs tesseract"):
        extract(files["text"], ocr="always")


def test_garbage_text_layers_are_recognised():
    assert pdf.text_layer_problem("") == "missing"
    assert pdf.text_layer_problem(" \n\f ") == "missing"
    assert pdf.text_layer_problem("\x01\x02\x03\x04 \x05\x06\x07\x08 \x0e\x0f\x10") == "garbage"
    assert pdf.text_layer_problem("\ue000\ue001\ue002 \ue003 words and more words") == "garbage"
    assert pdf.text_layer_problem("!#$%& ()*+, -./:; <=>?@ [\\]^_") == "garbage"
    assert pdf.text_layer_problem("Page 3") == "short"
    assert pdf.text_layer_problem("An ordinary paragraph of English text, with punctuation.") is None
    assert pdf.text_layer_problem("Ein gewöhnlicher Absatz, für Menschen geschrieben.") is None


# --- broken PDFs ---------------------------------------------------------------------------


@pytest.mark.parametrize("name, complaint", [
    ("encrypted", "encrypted PDF (it needs a password)"),
    ("truncated", "not a readable PDF (corrupt or truncated)"),
    ("empty", "the PDF has no pages"),
])
def test_unreadable_pdfs_are_bad_input(files, name, complaint):
    with pytest.raises(InputError) as raised:
        extract(files[name])
    assert raised.value.status == ExitStatus.DATA_ERROR
    assert str(raised.value).startswith(f"{files[name]}: {complaint}")


def test_bytes_that_are_not_a_pdf():
    with pytest.raises(InputError, match="stdin: not a PDF"):
        pdf.extract_pdf(b"hello, world")


@pytest.mark.parametrize("name, complaint", [
    ("text", None),
    ("encrypted", "encrypted PDF"),
    ("truncated", "not a readable PDF"),
    ("empty", "the PDF has no pages"),
])
def test_poppler_programs_stand_in_for_the_bindings(files, monkeypatch, name, complaint):
    monkeypatch.setitem(sys.modules, "pdftotext", None)  # "import pdftotext" now fails
    if complaint is None:
        assert extract(files[name]).text == "\n".join(TEXT_LINES) + "\f" + "\n".join(SECOND_PAGE)
    else:
        with pytest.raises(InputError, match=complaint):
            extract(files[name])


# --- page selection --------------------------------------------------------------------------


def test_page_ranges():
    assert pdf.parse_page_ranges("1-3,7") == [(1, 3), (7, 7)]
    assert pdf.parse_page_ranges(" 10- , -2") == [(10, None), (1, 2)]
    assert pdf.select_pages(pdf.parse_page_ranges("2-3,1,3"), 5) == ([1, 2, 3], [])
    assert pdf.select_pages(pdf.parse_page_ranges("4-"), 5) == ([4, 5], [])
    assert pdf.select_pages(pdf.parse_page_ranges("4-6,9"), 5) == ([4, 5], [(6, 6), (9, 9)])
    for bad in ("", "a", "3-1", "0", "1-2-3", "1,,2"):
        with pytest.raises(UsageError):
            pdf.parse_page_ranges(bad)
    assert pages.describe_pages([1, 2, 3, 7, 9, 10]) == "1-3, 7, 9-10"


def test_pages_option_selects_pages(files):
    result = extract(files["long"], pages="2-3,25")
    assert [page.number for page in result.pages] == [2, 3, 25]
    assert result.text == "This is page 2 of the long report.\fThis is page 3 of the long report.\f" \
                          "This is page 25 of the long report."
    beyond = extract(files["text"], pages="2-4")
    assert [page.number for page in beyond.pages] == [2]
    assert beyond.warnings == [f"{files['text']}: no page 3-4 (the PDF has 2)"]
    with pytest.raises(UsageError, match="no page 5 in a PDF of 2 pages"):
        extract(files["text"], pages="5")


# --- the message and the ways in --------------------------------------------------------------


def test_pdf_message_meta(files):
    msg = pdf.pdf_message(files["mixed"].read_bytes(), source="mixed.pdf", pages="1-2")
    assert stack.validation_error(msg) is None
    assert msg["meta"] == {"source": "mixed.pdf", "tool": "llm-pdf", "page_count": 3, "pages": [1, 2],
                           "ocr_pages": [2]}


def test_stdin_and_llm_p_read_pdfs_through_the_same_code(files):
    from llmtools.inputs import file_message, read_messages

    [from_stdin] = read_messages(files["text"].read_bytes())
    assert from_stdin["content"] == "\n".join(TEXT_LINES) + "\f" + "\n".join(SECOND_PAGE)
    assert "source" not in from_stdin["meta"]
    from_path = file_message(str(files["text"]))
    assert from_path["content"] == from_stdin["content"]
    assert from_path["meta"]["source"] == str(files["text"])


def test_cli_writes_one_message_per_pdf_and_reports_failures(files):
    result = invoke([str(files["text"]), str(files["encrypted"]), str(files["mixed"]), "--ocr", "never"])
    assert result.exit_code == ExitStatus.DATA_ERROR
    messages = stack.parse_stack(result.stdout)
    assert [m["meta"]["source"] for m in messages] == [str(files["text"]), str(files["mixed"])]
    assert result.stderr.splitlines()[0] == (
        f"llm-pdf: error: {files['encrypted']}: encrypted PDF (it needs a password); "
        "decrypt it first, e.g. with qpdf --decrypt")


def test_cli_reads_stdin_and_writes_text(files):
    result = invoke(["-o", "text", "--pages", "1"], input=files["text"].read_bytes())
    assert result.exit_code == 0
    assert result.stdout == "\n".join(TEXT_LINES) + "\n"


def test_cli_progress_is_by_time_not_pages(files, monkeypatch):
    monkeypatch.setattr(pdf_cli, "PROGRESS_AFTER_S", 0.0)  # every run counts as slow
    short_run = invoke([str(files["text"])])
    assert short_run.stderr.splitlines()[-1] == f"llm-pdf: {files['text']}: text 2/2 pages"
    long_run = invoke([str(files["long"])])
    progress = long_run.stderr.splitlines()
    assert progress[-1] == f"llm-pdf: {files['long']}: text 25/25 pages"
    assert len(progress) <= 11  # a line per tenth, not per page
    assert invoke([str(files["long"]), "-q"]).stderr == ""
    monkeypatch.setattr(pdf_cli, "PROGRESS_AFTER_S", 3600.0)  # every run counts as quick
    assert invoke([str(files["long"])]).stderr == ""  # many pages, but no wait to report


def test_cli_text_output_has_no_form_feed_and_names_each_pdf(files):
    result = invoke(["-o", "text", str(files["text"]), str(files["long"])])
    assert result.exit_code == 0
    assert "\f" not in result.stdout
    lines = result.stdout.splitlines()
    assert lines[0] == f"==> {files['text']} <==" and f"==> {files['long']} <==" in lines
    assert "--- page 2 ---" in lines and "--- page 25 ---" in lines
    one = invoke(["-o", "text", "--pages", "2-3", str(files["long"])]).stdout
    assert "==>" not in one and "--- page 3 ---" in one.splitlines()


@pytest.mark.parametrize("args, complaint", [
    (["--pages", "3-1", "x.pdf"], "Invalid value for '--pages'"),
    (["--ocr", "sometimes", "x.pdf"], "Invalid value for '--ocr'"),
    (["/nonexistent/x.pdf"], "llm-pdf: error: /nonexistent/x.pdf: No such file or directory"),
    (["-", "-"], "stdin (-) can be read only once"),
])
def test_cli_usage_errors(args, complaint):
    result = invoke(args, input=b"")
    assert result.exit_code == ExitStatus.USAGE
    assert complaint in result.stderr


@pytest.fixture(scope="module")
def site(files):
    server = LocalSite(pdf=files["scanned"].read_bytes()).start()
    yield server
    server.stop()


def test_cli_reads_pdf_urls(site):
    result = invoke([site.url("/report.pdf"), site.url("/article"), site.url("/hang"), "--timeout", "1"])
    assert result.exit_code == ExitStatus.DATA_ERROR  # the page that is not a PDF outranks the timeout
    [msg] = stack.parse_stack(result.stdout)
    assert msg["meta"]["source"] == site.url("/report.pdf") and msg["meta"]["ocr_pages"] == [1, 2]
    assert share_of_words_recovered(words(SCAN_LINES), msg["content"]) >= 0.9
    assert result.stderr.splitlines()[-2:] == [
        f"llm-pdf: error: {site.url('/article')}: not a PDF (served as text/html)",
        f"llm-pdf: error: {site.url('/hang')}: timed out after 1 s",
    ]


def test_process_end_to_end(files):
    completed = subprocess.run(
        [command_path("llm-pdf"), str(files["mixed"]), str(files["truncated"])],
        capture_output=True, timeout=120, stdin=subprocess.DEVNULL)
    assert completed.returncode == ExitStatus.DATA_ERROR
    [msg] = stack.parse_stack(completed.stdout.decode())
    assert msg["meta"]["ocr_pages"] == [2]
    # A progress line may come first when the OCR page takes over a second (a loaded machine).
    said = [line for line in completed.stderr.decode().splitlines() if not line.endswith(" pages")]
    assert said == [f"llm-pdf: error: {files['truncated']}: not a readable PDF (corrupt or truncated)"]

    piped = subprocess.run([command_path("llm-pdf"), "-o", "text"], input=files["scanned"].read_bytes(),
                           capture_output=True, timeout=120)
    assert piped.returncode == 0
    assert share_of_words_recovered(words(SCAN_LINES + SECOND_SCAN), piped.stdout.decode()) >= 0.9
    # Progress only when the OCR took over a second: at most one line per page, nothing else.
    assert set(piped.stderr.decode().splitlines()) <= {"llm-pdf: stdin: OCR 1/2 pages",
                                                       "llm-pdf: stdin: OCR 2/2 pages"}
