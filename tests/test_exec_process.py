"""`llm-exec` as real processes: a terminal for --confirm, Ctrl-C, and the daemon's runtimes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess

import pytest

from llmtools import codeact
from tests.conftest import command_path
from tests.helpers import run_process
from tests.test_exec_cli import Script, block
from tests.test_runtime_manager import wait_for_exit


def test_a_multi_block_task_as_a_real_process(tmp_path):
    listing = "import pathlib\nnames = sorted(p.name for p in pathlib.Path('.').iterdir())"
    script = Script(tmp_path, block("Files:", listing),
                    block("Count:", "len(names)"), "There are 2 files.")
    (tmp_path / "other.txt").write_text("x")
    result = run_process("llm-exec", ["-m", script.model, "count the files"], timeout=60)
    assert result.status == 0, result.stderr
    assert result.stdout == "Files:\nCount:\nThere are 2 files.\n"
    # The runtime ran in the caller's directory, where replies.jsonl and other.txt are
    # (the .cursor and .requests.jsonl files are kept in the data directory, not there).
    assert script.result_sent(2).startswith("<helpers_result>\n")
    assert int(script.result_sent(2).split("\n")[1]) >= 2


def test_confirm_asks_on_the_terminal_even_when_stdin_is_a_pipe(tmp_path):
    pexpect = pytest.importorskip("pexpect")
    marker = tmp_path / "declined.txt"
    script = Script(tmp_path, block("First.", f"write_file({str(marker)!r}, 'x')"),
                    block("Second.", "6 * 7"), "Done: 42.")
    command = f"printf 'piped data' | {command_path('llm-exec')} --confirm -m {script.model} task"
    child = pexpect.spawn("/bin/sh", ["-c", command], env=dict(os.environ), cwd=str(tmp_path),
                          timeout=60, encoding="utf-8")
    try:
        child.expect(r"Run this block\? \[y\]es, \[N\]o \(tell the model\), \[q\]uit: ")
        assert "write_file(" in child.before  # the block was shown before the question
        child.sendline("n")
        child.expect(r"Run this block\?")
        child.sendline("y")
        child.expect("Done: 42.")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0
    assert not marker.exists()
    assert codeact.DECLINED_NOTE in script.result_sent(1)
    assert script.result_sent(2) == "<helpers_result>\n42\n</helpers_result>"
    contents = [m["content"] for m in script.requests()[0]["messages"][1:]]
    assert contents[0] == "piped data" and contents[-1] == "task"  # with the `documents` note between


def test_confirm_without_a_terminal_is_a_usage_error(tmp_path):
    script = Script(tmp_path, "never asked")
    completed = subprocess.run([command_path("llm-exec"), "--confirm", "-m", script.model, "go"],
                               capture_output=True, timeout=60, start_new_session=True,  # no tty
                               stdin=subprocess.DEVNULL, check=False)
    assert completed.returncode == 2
    assert b"--confirm needs a terminal" in completed.stderr
    assert script.requests() == []


@pytest.mark.parametrize("signum, status, sandbox", [(signal.SIGINT, 130, "off"), (signal.SIGTERM, 143, "off"),
                                                     (signal.SIGINT, 130, "workspace")])
def test_ctrl_c_stops_the_running_block_keeps_the_thread_and_exits_130(tmp_path, signum, status, sandbox):
    path = str(tmp_path / "running.sock")
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(path)
    listener.listen(1)
    listener.settimeout(60)
    script = Script(tmp_path, block("Waiting.", "import os, socket, time\nbefore = 'kept'\n"
                                                f"s = socket.socket(socket.AF_UNIX); s.connect({path!r})\n"
                                                "s.sendall(str(os.getpid()).encode()); s.close()\n"
                                                "time.sleep(600)"), "never asked")
    # In the sandbox the socket is reachable only where it is shown to the code.
    process = subprocess.Popen([command_path("llm-exec"), "-m", script.model, "--thread", "c",
                                "--sandbox", sandbox, "--allow-path", f"{tmp_path}:rw", "go"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        connection, _ = listener.accept()  # the block is running
        worker_pid = int(connection.recv(64))
        connection.close()
        process.send_signal(signum)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == status, stderr
    assert stdout == b"Waiting.\n"
    if sandbox == "off":  # a sandboxed worker's pid is its own namespace's
        assert wait_for_exit(worker_pid, 20)
    assert run_process("llm-exec", ["--thread", "c", "--sandbox", sandbox, "--eval", "before"]).stdout == "kept\n"


def test_eval_reaches_a_live_runtime_through_the_daemon(tmp_path, monkeypatch):
    """Across processes with the daemon: the thread's worker stays alive between commands,
    so even what a snapshot cannot hold (a lock) is still there."""
    pytest.importorskip("llmtools.daemon.client")
    monkeypatch.delenv("LLMTOOLS_NO_DAEMON")
    script = Script(tmp_path, block("Defining.", "import threading\nlock = threading.Lock()\n"
                                                 "def locked_double(n):\n    with lock:\n        return 2 * n"),
                    "Defined.")
    first = run_process("llm-exec", ["-m", script.model, "--thread", "live", "define"], timeout=60)
    assert first.status == 0, first.stderr
    assert "no daemon" not in first.stderr
    second = run_process("llm-exec", ["--thread", "live", "--eval", "locked_double(21)"], timeout=60)
    assert (second.status, second.stdout) == (0, "42\n"), second.stderr
    third = run_process("llm-exec", ["--thread", "live", "--eval", "type(lock).__name__"], timeout=60)
    assert third.stdout == "lock\n"
