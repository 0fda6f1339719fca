"""Issue 14: inputs built to blow up (see tests/bombs.py) stay bounded in time and memory.

Peak memory is each command's own maximum RSS, from wait4(2). Every command runs under a
3 GB address-space limit and a time limit, so a regression fails here, not the machine.
scripts/bench_bombs.py prints the same figures side by side.
"""

from __future__ import annotations

import os
import resource
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests import bombs
from tests.conftest import command_path

MB = 1 << 20


def measured(name: str, args: list[str], tmp_path, *, stdin_path=None, timeout: float = 120):
    """(status, stdout bytes, stderr text, peak RSS in MB, seconds) of one command."""
    out, err = tmp_path / "stdout", tmp_path / "stderr"

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))

    with open(out, "wb") as stdout, open(err, "wb") as stderr, \
            open(stdin_path or os.devnull, "rb") as stdin:
        started = time.monotonic()
        process = subprocess.Popen([command_path(name), *args], stdin=stdin, stdout=stdout,
                                   stderr=stderr, preexec_fn=limit)
        timer = threading.Timer(timeout, process.kill)
        timer.start()
        try:
            _, status, usage = os.wait4(process.pid, 0)
        finally:
            timer.cancel()
        process.returncode = os.waitstatus_to_exitcode(status)
        took = time.monotonic() - started
    return (process.returncode, out.read_bytes(), err.read_text(errors="replace"),
            usage.ru_maxrss / 1024, took)


@pytest.fixture(scope="module")
def hundred_megabytes(tmp_path_factory):
    path = tmp_path_factory.mktemp("big") / "message.txt"
    line = b"abcdefghij" * 10 + b"\n"
    with open(path, "wb") as handle:
        for _ in range(100 * MB // len(line)):
            handle.write(line)
    return path


def test_a_100_mb_message_is_not_copied_many_times(hundred_megabytes, tmp_path):
    status, stdout, stderr, peak_mb, _ = measured("llm", ["-m", "echo", "--no-log"], tmp_path,
                                                  stdin_path=hundred_megabytes)
    assert status == 0, stderr
    assert len(stdout) > 100 * MB
    # The message, the echo model's answer (a copy by its nature) and the joined answer.
    assert peak_mb < 400, f"peak RSS {peak_mb:.0f} MB for a 100 MB message"


def test_a_100_mb_message_as_a_stack_line(hundred_megabytes, tmp_path):
    import json

    stack_path = tmp_path / "stack.jsonl"
    stack_path.write_text(json.dumps({"role": "user", "content": hundred_megabytes.read_text()}) + "\n")
    status, stdout, stderr, peak_mb, _ = measured("llm", ["-m", "echo", "--no-log"], tmp_path,
                                                  stdin_path=stack_path)
    assert status == 0, stderr
    assert peak_mb < 400, f"peak RSS {peak_mb:.0f} MB"


@pytest.mark.parametrize("bomb, status, words", [
    ("inflating", 65, "a decompression bomb: its compressed streams expand to more than 256 MB"),
    ("many_pages", 65, "20000 pages to read, more than 10000 at once; choose some with --pages"),
    ("huge_page", 0, "200 x 200 inches is too large to OCR"),
])
def test_pdf_bombs_are_refused_in_bounded_time_and_memory(tmp_path, bomb, status, words):
    path = tmp_path / f"{bomb}.pdf"
    path.write_bytes({"inflating": lambda: bombs.inflating_pdf(300), "many_pages": bombs.many_pages_pdf,
                      "huge_page": bombs.huge_page_pdf}[bomb]())
    got, _, stderr, peak_mb, took = measured("llm-pdf", ["-q", "-o", "text", str(path)], tmp_path)
    assert got == status, stderr
    assert words in stderr
    assert peak_mb < 300 and took < 60, (peak_mb, took)


def test_many_pages_are_read_when_chosen(tmp_path):
    path = tmp_path / "many.pdf"
    path.write_bytes(bombs.many_pages_pdf())
    status, stdout, stderr, _, _ = measured("llm-pdf", ["-q", "-o", "text", "--pages", "5-9", str(path)],
                                            tmp_path)
    assert status == 0, stderr
    assert stdout.decode().splitlines().count("page") == 5  # the text of five pages (and their separators)


class _Site(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.release = threading.Event()
        self.gzip_bomb = bombs.gzip_bomb(2048)
        self.deep = bombs.nested_html()
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"


class _Handler(BaseHTTPRequestHandler):
    server: _Site

    def log_message(self, format, *args):  # noqa: A002
        pass

    def do_GET(self) -> None:  # noqa: N802
        headers = {"Content-Type": "text/html; charset=utf-8"}
        if self.path == "/gzip-bomb":
            body = self.server.gzip_bomb
            headers["Content-Encoding"] = "gzip"
        elif self.path == "/deep":
            body = self.server.deep
        else:  # /never-ends: a start, then a byte now and then until the test ends
            body = None
        self.send_response(200)
        for key, value in headers.items():
            self.send_header(key, value)
        if body is not None:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            if body is not None:
                self.wfile.write(body)
                return
            self.wfile.write(b"<html><head><title>Loading</title></head><body><p>Loading the rest")
            while not self.server.release.wait(0.2):
                self.wfile.write(b".")
                self.wfile.flush()
        except OSError:
            pass


@pytest.fixture(scope="module")
def site():
    server = _Site()
    yield server
    server.release.set()
    server.shutdown()
    server.server_close()


def test_a_gzip_bomb_stops_at_the_body_limit(site, tmp_path):
    status, _, stderr, peak_mb, took = measured("llm-fetch", ["--no-browser", site.url("/gzip-bomb")], tmp_path)
    assert status == 65, stderr
    assert "larger than 200 MB" in stderr
    assert peak_mb < 600 and took < 60, (peak_mb, took)


@pytest.mark.parametrize("browser", [False, True], ids=["http", "chromium"])
def test_html_nested_100000_deep_keeps_its_text(site, tmp_path, browser):
    args = ["-o", "text", site.url("/deep")] + ([] if browser else ["--no-browser"])
    status, stdout, stderr, peak_mb, took = measured("llm-fetch", args, tmp_path)
    assert status == 0, stderr
    assert "bottom" in stdout.decode()
    assert "nested too deeply" in stderr
    assert took < 60


@pytest.mark.parametrize("browser", [False, True], ids=["http", "chromium"])
def test_a_page_that_never_finishes_loading_times_out(site, tmp_path, browser):
    args = ["--timeout", "3", site.url("/never-ends")] + ([] if browser else ["--no-browser"])
    status, _, stderr, _, took = measured("llm-fetch", args, tmp_path)
    assert status == 75, stderr
    assert "timed out after 3 s" in stderr
    assert took < 30


def test_inflated_size_is_counted_past_the_first_piece():
    from llmtools.content import pdfguard
    from llmtools.errors import InputError
    from tests.pdfs import TextPage, write_pdf

    small_bomb = bombs.inflating_pdf(3)  # ~7 KB deflated: all of it inside the first piece read
    with pytest.raises(InputError, match="decompression bomb"):
        pdfguard.check_inflated_size(small_bomb, "x.pdf", budget=2 * MB)
    pdfguard.check_inflated_size(small_bomb, "x.pdf", budget=4 * MB)
    pdfguard.check_inflated_size(write_pdf([TextPage(["an ordinary page"])]), "ok.pdf")


def test_a_scans_page_images_are_not_counted_as_a_bomb():
    from PIL import Image

    from llmtools.content import pdfguard
    from tests.pdfs import ImagePage, write_pdf

    page = ImagePage(Image.new("L", (2550, 3300), 255))  # a blank letter page at 300 dpi: 8.4 MB inflated
    pdfguard.check_inflated_size(write_pdf([page, page, page]), "scan.pdf", budget=20 * MB)


def test_a_stream_posing_as_an_image_is_counted_when_a_page_uses_it_as_contents():
    import zlib

    from llmtools.content import pdfguard
    from llmtools.errors import InputError

    bomb = bombs.inflating_pdf(3).replace(b"/Filter /FlateDecode >>", b"/Filter /FlateDecode /Subtype /Image >>")
    assert b"/Subtype /Image" in bomb
    with pytest.raises(InputError, match="decompression bomb"):
        pdfguard.check_inflated_size(bomb, "x.pdf", budget=2 * MB)
    # The page dictionary inside a compressed object stream, as PDF 1.5 writers put it.
    contents = bomb[bomb.index(b"<< /Length"):bomb.index(b"endstream") + len(b"endstream")]

    def page_in_object_stream(contents_number: int) -> bytes:
        packed = zlib.compress(b"4 0 << /Type /Page /Parent 2 0 R /Contents %d 0 R >>" % contents_number)
        object_stream = (b"<< /Type /ObjStm /N 1 /First 4 /Length %d /Filter /FlateDecode >>\nstream\n"
                         % len(packed) + packed + b"\nendstream")
        return bombs._pdf([b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [4 0 R] /Count 1 >>",
                           object_stream, b"null", contents, _blank_page_stream()])

    with pytest.raises(InputError, match="decompression bomb"):
        pdfguard.check_inflated_size(page_in_object_stream(5), "x.pdf", budget=2 * MB)
    pdfguard.check_inflated_size(page_in_object_stream(6), "x.pdf", budget=2 * MB)  # 5 is only an image


def _blank_page_stream() -> bytes:
    return b"<< /Length 0 >>\nstream\n\nendstream"
