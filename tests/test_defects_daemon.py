"""Issue 14: a daemon stopped with SIGSTOP (or hung) never hangs a client.

Each test stops a real daemon process with SIGSTOP and continues it in cleanup.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from tests.conftest import command_path
from tests.fakes.fixtures import anthropic_server  # noqa: F401  (fixture)
from tests.fakes.loopback import Reply
from tests.helpers import run_process

KEY = "sk-ant-test"


@pytest.fixture
def stopped_daemon(monkeypatch, llmtools_home):
    """A running daemon, then SIGSTOPped; SIGCONT in cleanup (conftest then stops it)."""
    monkeypatch.delenv("LLMTOOLS_NO_DAEMON")
    started = run_process("llm", ["daemon", "start"])
    assert started.status == 0, started.stderr
    pid = json.loads((llmtools_home / "run" / "daemon.pid").read_text())["pid"]
    os.kill(pid, signal.SIGSTOP)
    yield pid
    try:
        os.kill(pid, signal.SIGCONT)
    except ProcessLookupError:
        pass


@pytest.fixture
def anthropic_env(anthropic_server, monkeypatch):  # noqa: F811
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", anthropic_server.base_url)
    return anthropic_server


def timed(name: str, args: list[str], timeout: float = 60, **kwargs):
    started = time.monotonic()
    result = run_process(name, args, timeout=timeout, **kwargs)
    return result, time.monotonic() - started


def test_llm_falls_back_in_process_when_the_daemon_does_not_answer(anthropic_env, stopped_daemon):
    anthropic_env.script(Reply(text="answered here"))
    result, took = timed("llm", ["-m", "claude-sonnet-4-6", "q"])
    assert (result.status, result.stdout) == (0, "answered here\n"), result.stderr
    assert f"the daemon (pid {stopped_daemon}) did not answer" in result.stderr
    assert "working without it" in result.stderr
    assert took < 30


def test_daemon_status_says_it_does_not_answer(stopped_daemon):
    result, took = timed("llm", ["daemon", "status"])
    assert result.status == 69
    assert f"the daemon (pid {stopped_daemon}) did not answer" in result.stderr
    assert took < 30


def test_daemon_stop_kills_a_daemon_that_does_not_answer(stopped_daemon):
    from llmtools.launch import process_alive

    result, took = timed("llm", ["daemon", "stop"])
    assert result.status == 0, result.stderr
    assert f"daemon stopped (pid {stopped_daemon})" in result.stdout
    assert not process_alive(stopped_daemon)
    again = run_process("llm", ["daemon", "status"])
    assert again.status == 1 and "not running" in again.stdout


def test_llm_exec_works_in_process_when_the_daemon_does_not_answer(stopped_daemon, tmp_path):
    replies = tmp_path / "replies.txt"
    replies.write_text("<helpers>\nprint(6 * 7)\n</helpers>\n%\nIt is 42.\n")
    result, took = timed("llm-exec", ["-q", "-m", f"script:{replies}", "compute"])
    assert result.status == 0, result.stderr
    assert "It is 42." in result.stdout
    assert "did not answer" in result.stderr
    assert took < 60


def test_llm_exec_honours_the_first_sigterm_while_the_daemon_is_stopped(monkeypatch, llmtools_home, tmp_path):
    monkeypatch.delenv("LLMTOOLS_NO_DAEMON")
    started = tmp_path / "started"
    replies = tmp_path / "replies.txt"
    replies.write_text(f"<helpers>\nopen({str(started)!r}, 'w').close()\nimport time\ntime.sleep(120)\n"
                       "</helpers>\n%\nnever\n")
    # The block marks its start in tmp_path, which the sandbox shows only when named.
    process = subprocess.Popen([command_path("llm-exec"), "-q", "-m", f"script:{replies}",
                                "--allow-path", f"{tmp_path}:rw", "go"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    daemon = None
    try:
        deadline = time.monotonic() + 60
        while not started.exists():  # the block runs in the daemon's worker now
            assert process.poll() is None and time.monotonic() < deadline, process.stderr.read()
            time.sleep(0.05)
        daemon = json.loads((llmtools_home / "run" / "daemon.pid").read_text())["pid"]
        os.kill(daemon, signal.SIGSTOP)
        sent = time.monotonic()
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
        assert process.returncode == 143, stderr
        assert time.monotonic() - sent < 10
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if daemon is not None:
            os.kill(daemon, signal.SIGCONT)
