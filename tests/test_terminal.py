"""What a person at a terminal sees: real commands on a real pseudo-terminal (pexpect).

Styling obeys NO_COLOR, TERM=dumb and --raw; text shows the moment it arrives, even
mid-line; a spinner fills the wait for the first token and is erased; every command
answers -h, --help and --version the same way; a reader that leaves gives 141.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
import tomllib

import click
import pexpect
import pytest

from llmtools import __version__
from llmtools.cli.options import debug_option
from llmtools.terminal import SPINNER_FRAMES
from tests.conftest import REPO, command_path
from tests.fakes import CutMidStream, SlowFirstByte
from tests.fakes.openai_server import OpenAIFakeServer
from tests.helpers import run_command
from tests.pdfs import TextPage, write_pdf

SCRIPTS = sorted(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"])
HEAVY_MODULES = ("anthropic", "openai", "httpx", "playwright", "faiss", "llama_cpp", "tiktoken",
                 "pytesseract", "numpy")
ESCAPE = "\x1b"
MARKDOWN = "**bold** and `code`"
# Bounds on waiting for a process, not delays: each wait ends when its condition holds.
PROCESS_LIMIT_S = 60


def on_pty(name: str, args: list[str], **env: str) -> pexpect.spawn:
    """A command on a fresh pseudo-terminal (stdin, stdout and stderr all on it)."""
    # The control cases must not inherit a NO_COLOR from whoever runs the tests.
    environment = {name: value for name, value in os.environ.items() if name != "NO_COLOR"}
    environment.update({"TERM": "xterm-256color", **env})
    return pexpect.spawn(command_path(name), args, env=environment, encoding="utf-8",
                         dimensions=(24, 200), timeout=PROCESS_LIMIT_S)


def screen_of(child: pexpect.spawn) -> tuple[str, int]:
    """Everything the command wrote to the terminal, and its exit status."""
    child.expect(pexpect.EOF)
    child.close()
    return child.before, child.exitstatus


# --- NO_COLOR, TERM=dumb, --raw ----------------------------------------------------------


def test_a_terminal_gets_styled_markdown_by_default():
    # The control for the tests below: without being told otherwise, escape codes are there.
    screen, status = screen_of(on_pty("llm", ["-m", "echo", MARKDOWN]))
    assert status == 0
    assert ESCAPE in screen and "**" not in screen


@pytest.mark.parametrize("env, args", [
    ({"NO_COLOR": "1"}, []),
    ({"TERM": "dumb"}, []),
    ({}, ["--raw"]),
], ids=["NO_COLOR", "TERM=dumb", "--raw"])
def test_no_escape_codes_when_the_user_says_so(env, args):
    screen, status = screen_of(on_pty("llm", ["-m", "echo", *args, MARKDOWN], **env))
    assert status == 0
    assert ESCAPE not in screen, repr(screen)
    assert MARKDOWN in screen  # the raw text, unchanged


def test_an_empty_no_color_does_not_count():
    # no-color.org: NO_COLOR applies when it is set *and non-empty*.
    screen, _ = screen_of(on_pty("llm", ["-m", "echo", MARKDOWN], NO_COLOR=""))
    assert ESCAPE in screen


@pytest.mark.parametrize("env, args", [
    ({"NO_COLOR": "1"}, []),
    ({"TERM": "dumb"}, []),
    ({}, ["--raw"]),
], ids=["NO_COLOR", "TERM=dumb", "--raw"])
def test_content_commands_obey_them_too(tmp_path, env, args):
    pdf_path = tmp_path / "styled.pdf"
    pdf_path.write_bytes(write_pdf([TextPage(["Some **bold** words"])]))
    styled, _ = screen_of(on_pty("llm-pdf", [str(pdf_path)]))
    assert ESCAPE in styled  # the control: a terminal gets the text rendered
    screen, status = screen_of(on_pty("llm-pdf", [*args, str(pdf_path)], **env))
    assert status == 0
    assert ESCAPE not in screen and "Some **bold** words" in screen


# --- text as it arrives --------------------------------------------------------------------


class TimedOpenAIServer(OpenAIFakeServer):
    """The OpenAI fake, noting when each piece of a stream left it."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[tuple[float, str]] = []
        self.something_sent = threading.Condition()

    def respond(self, request, behaviour, exchange) -> None:
        send = exchange.send

        def timed_send(text: str) -> None:
            leaving = time.monotonic()
            send(text)
            with self.something_sent:
                self.sent.append((leaving, text))
                self.something_sent.notify_all()

        exchange.send = timed_send
        super().respond(request, behaviour, exchange)

    def when_sent(self, fragment: str) -> float:
        with self.something_sent:
            found = self.something_sent.wait_for(
                lambda: [at for at, text in self.sent if fragment in text], PROCESS_LIMIT_S)
        assert found, f"{fragment!r} was never sent"
        return found[0]


@pytest.fixture
def openai_on_loopback(monkeypatch):
    with TimedOpenAIServer() as server:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("LLMTOOLS_RETRY_BASE_DELAY", "0.01")
        yield server


def test_text_reaches_the_terminal_within_100ms_of_arriving_mid_line(openai_on_loopback):
    # Half a line, then the stream stays open: the old line-at-a-time renderer showed
    # nothing until the line ended, so this wait would never be satisfied.
    openai_on_loopback.script(CutMidStream(text_before_cut="The answer **begins", chunks=1, hold=True))
    child = on_pty("llm", ["-m", "gpt-4.1", "q"])
    child.expect_exact("The answer **begins")
    seen = time.monotonic()
    assert seen - openai_on_loopback.when_sent("The answer **begins") < 0.1
    assert child.isalive()  # the rest has not arrived: the stream is still held open
    openai_on_loopback.released.set()  # now the connection drops part-way
    screen, status = screen_of(child)
    assert status == 75  # a cut stream, after the partial answer was shown
    assert "error" in screen


def test_a_spinner_fills_the_wait_for_the_first_token_and_is_erased(openai_on_loopback):
    # The first request gets no byte until released (then the connection drops and the
    # retry is answered), so the spinner has all the time it needs to appear.
    openai_on_loopback.script(SlowFirstByte())
    child = on_pty("llm", ["-m", "gpt-4.1", "q"])
    child.expect_exact(list(SPINNER_FRAMES))
    openai_on_loopback.released.set()
    child.expect_exact("Hello from the fake server.")
    shown = child.before
    screen, status = screen_of(child)
    assert status == 0
    last_frame = max(shown.rfind(frame) for frame in SPINNER_FRAMES)
    assert "\r \r" in shown[last_frame:]  # erased before the answer began


def test_no_spinner_when_stdout_is_not_the_terminal(openai_on_loopback, tmp_path):
    # stdout to a file (or a pager): a spinner on stderr would scribble over what the
    # reader shows, so none is drawn; the answer still arrives.
    openai_on_loopback.script(SlowFirstByte())
    answer = tmp_path / "answer.txt"
    child = pexpect.spawn("/bin/sh", ["-c", f'"$0" -m gpt-4.1 q > {answer}', command_path("llm")],
                          env={**os.environ, "TERM": "xterm"}, encoding="utf-8", timeout=PROCESS_LIMIT_S)
    openai_on_loopback.wait_for_requests(1, timeout=PROCESS_LIMIT_S)
    openai_on_loopback.released.set()
    screen, status = screen_of(child)
    assert status == 0
    assert not any(frame in screen for frame in SPINNER_FRAMES)
    assert answer.read_text() == "Hello from the fake server.\n"


# --- one skeleton for every command ---------------------------------------------------------


@pytest.mark.parametrize("script", SCRIPTS)
@pytest.mark.parametrize("flag", ["--version", "-h", "--help"])
def test_every_command_answers_version_and_help_without_importing_an_sdk(script, flag):
    completed = subprocess.run([command_path(script), flag], capture_output=True, text=True,
                               timeout=PROCESS_LIMIT_S, env={**os.environ, "PYTHONPROFILEIMPORTTIME": "1"})
    assert completed.returncode == 0, completed.stderr
    if flag == "--version":
        assert completed.stdout == f"llmtools {__version__}\n"
    else:
        assert completed.stdout.startswith(f"Usage: {script} ")
        assert "--version" in completed.stdout and "--debug" in completed.stdout
    imported = [line.rsplit("|", 1)[-1].strip() for line in completed.stderr.splitlines()
                if line.startswith("import time:")]
    other_stderr = [line for line in completed.stderr.splitlines() if not line.startswith("import time:")]
    assert other_stderr == []
    assert not [name for name in imported if name.split(".")[0] in HEAVY_MODULES]


def test_debug_reaches_tracebacks_the_daemon_forwards():
    """--debug is exported as LLMTOOLS_DEBUG for the run, which is what the daemon client
    (and every request it sends) goes by; it is put back afterwards."""
    seen = []

    @click.command()
    @debug_option
    def crash() -> None:
        from llmtools.daemon.client import raise_for_error

        seen.append(os.environ.get("LLMTOOLS_DEBUG"))
        raise_for_error({"event": "error", "kind": "DaemonCrash", "status": 1, "message": "it broke",
                         "traceback": "Traceback (on the daemon's side)"})

    quiet = run_command(crash, [], prog_name="probe")
    debugged = run_command(crash, ["--debug"], prog_name="probe")
    assert seen == [None, "1"]
    assert "on the daemon's side" not in quiet.stderr
    assert "on the daemon's side" in debugged.stderr and "probe: error: it broke" in debugged.stderr
    assert "LLMTOOLS_DEBUG" not in os.environ


# --- a reader that leaves ----------------------------------------------------------------------


@pytest.mark.parametrize("expression", ["'x' * 10", "print('x' * 10)"], ids=["value", "printed"])
def test_llm_exec_eval_into_a_closed_pipe_exits_141(expression):
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader has gone before anything is written
    try:
        completed = subprocess.run([command_path("llm-exec"), "--eval", expression], stdout=write_end,
                                   stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                   timeout=PROCESS_LIMIT_S)
    finally:
        os.close(write_end)
    assert completed.returncode == 141
    assert completed.stderr == ""
