"""Issue 14: when the exchange log cannot be written, the answer still comes out.

Read-only media, read-only files and full disks are made for real in a private mount
namespace (`unshare -m`, root only): bind mounts remounted read-only and small tmpfs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from llmtools.errors import ExitStatus
from tests.conftest import command_path
from tests.fakes.fixtures import anthropic_server  # noqa: F401  (fixture)
from tests.helpers import run_llm

NOT_LOGGED = 74


def _can_unshare() -> bool:
    if os.getuid() != 0 or not shutil.which("unshare"):
        return False
    probe = subprocess.run(["unshare", "-m", "--propagation", "private", "true"], capture_output=True)
    return probe.returncode == 0


needs_mounts = pytest.mark.skipif(not _can_unshare(), reason="needs root and unshare -m")


def in_namespace(setup: str, script: str, home) -> subprocess.CompletedProcess:
    """Run shell `setup` (mounts) then `script` in a private mount namespace. $LLM, $EXEC,
    $PY and $H (LLMTOOLS_HOME) are set for both."""
    env = {**os.environ, "LLMTOOLS_HOME": str(home), "H": str(home), "LLM": command_path("llm"),
           "EXEC": command_path("llm-exec"), "PY": sys.executable, "LLMTOOLS_NO_DAEMON": "1"}
    return subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-uc",
                           f"set -e\n{setup}\nset +e\n{script}"], env=env, capture_output=True, text=True, timeout=120)


READ_ONLY_DATA = 'mount --bind "$H/data" "$H/data"; mount -o remount,bind,ro "$H/data"'
READ_ONLY_DB = 'mount --bind "$H/data/logs.db" "$H/data/logs.db"; mount -o remount,bind,ro "$H/data/logs.db"'
READ_ONLY_HOME = 'mount --bind "$H" "$H"; mount -o remount,bind,ro "$H"'


def test_the_new_status_is_in_the_enum():
    assert ExitStatus.NOT_LOGGED == NOT_LOGGED


def _logged_once(llmtools_home) -> None:
    result = run_llm(["-m", "echo", "first"])
    assert result.status == 0 and (llmtools_home / "data" / "logs.db").exists()


@needs_mounts
@pytest.mark.parametrize("setup, cause", [
    (READ_ONLY_DATA, "the log database is on a read-only file system"),
    (READ_ONLY_DB, "the log database is read-only"),
], ids=["read-only dir", "read-only file"])
def test_a_read_only_log_still_gives_the_answer_and_can_be_read(llmtools_home, setup, cause):
    _logged_once(llmtools_home)
    result = in_namespace(setup, '"$LLM" -m echo second; echo "status=$?"; "$LLM" logs -n 5; echo "logs=$?"',
                          llmtools_home)
    assert '{"role": "user", "content": "second"}' in result.stdout
    assert f"status={NOT_LOGGED}" in result.stdout and "logs=0" in result.stdout
    assert "> first" in result.stdout  # llm logs read the database on read-only media
    warnings = [line for line in result.stderr.splitlines() if line.strip()]
    assert warnings == [f"llm: warning: not logged: {cause} ({llmtools_home}/data/logs.db)"], result.stderr


@needs_mounts
def test_a_read_only_home_with_no_log_yet(llmtools_home):
    result = in_namespace(READ_ONLY_HOME, '"$LLM" -m echo hello || echo "status=$?"', llmtools_home)
    assert '{"role": "user", "content": "hello"}' in result.stdout
    assert f"status={NOT_LOGGED}" in result.stdout
    assert "not logged: the log database is on a read-only file system" in result.stderr
    assert "internal error" not in result.stderr


def test_a_state_directory_that_cannot_be_made(llmtools_home):
    (llmtools_home / "data").write_text("a file where the data directory should be")
    result = run_llm(["-m", "echo", "hello"])
    assert result.status == NOT_LOGGED
    assert result.stdout == '{"role": "user", "content": "hello"}\n'
    assert "not logged: cannot write" in result.stderr and result.stderr.count("\n") == 1


@pytest.mark.parametrize("piped", [None, "some text\n"])
def test_a_corrupt_log_still_gives_the_answer(llmtools_home, piped):
    (llmtools_home / "data").mkdir()
    (llmtools_home / "data" / "logs.db").write_bytes(b"not a database at all\n" * 100)
    result = run_llm(["-m", "echo", "hello"], input=piped)
    assert result.status == NOT_LOGGED, result.stderr
    assert "hello" in result.stdout
    assert result.stderr.count("\n") == 1 and "the log database is corrupt" in result.stderr


def test_continuing_needs_a_log_it_can_read(llmtools_home):
    (llmtools_home / "data").mkdir()
    (llmtools_home / "data" / "logs.db").write_bytes(b"garbage" * 1000)
    result = run_llm(["-m", "echo", "-c", "more"])
    assert result.status == NOT_LOGGED
    assert "cannot read the log: the log database is corrupt" in result.stderr
    logs = run_llm(["logs"])
    assert logs.status == NOT_LOGGED and "internal error" not in logs.stderr


FULL_DISK = 'mount -t tmpfs -o size=512k tmpfs "$H"'


@needs_mounts
@pytest.mark.parametrize("fill_first", [True, False], ids=["already full", "fills during the write"])
def test_a_full_disk_names_the_cause(llmtools_home, fill_first):
    fill = 'dd if=/dev/zero of="$H/fill" bs=4k 2>/dev/null || true' if fill_first else "true"
    size = 300_000 if fill_first else 700_000
    script = (f'"$LLM" -m echo first >/dev/null; {fill}; '
              f'"$PY" -c "print(\'x\' * {size})" | "$LLM" -m echo | wc -c; echo "status=$?"; '
              f'"$PY" -c "print(\'x\' * {size})" | "$LLM" -m echo >/dev/null || echo "status=$?"')
    result = in_namespace(FULL_DISK, script, llmtools_home)
    assert int(result.stdout.split()[0]) > size  # the whole answer came out
    assert f"status={NOT_LOGGED}" in result.stdout, result.stdout + result.stderr
    assert "not logged: the disk is full" in result.stderr
    assert "rollback" not in result.stderr and "internal error" not in result.stderr


@needs_mounts
def test_llm_exec_answers_on_a_read_only_log(llmtools_home, tmp_path):
    _logged_once(llmtools_home)
    replies = tmp_path / "replies.jsonl"
    replies.write_text('"The answer is 42."\n')
    result = in_namespace(READ_ONLY_DATA, f'"$EXEC" -m "script:{replies}" "what?" || echo "status=$?"',
                          llmtools_home)
    assert "The answer is 42." in result.stdout
    assert f"status={NOT_LOGGED}" in result.stdout
    assert "not logged: the log database is on a read-only file system" in result.stderr


@pytest.fixture
def anthropic_env(anthropic_server, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", anthropic_server.base_url)
    return anthropic_server


def test_a_client_killed_mid_answer_leaves_a_lost_row_not_a_running_one(anthropic_env):
    import signal

    from llmtools.logs import open_log
    from tests.fakes.loopback import CutMidStream

    anthropic_env.script(CutMidStream(text_before_cut="Half an ans", hold=True))
    process = subprocess.Popen([command_path("llm"), "-m", "claude-sonnet-4-6", "q"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    received = b""
    while len(received) < len("Half an ans"):
        chunk = process.stdout.read1(64)
        assert chunk, process.stderr.read()
        received += chunk
    os.kill(process.pid, signal.SIGKILL)
    process.communicate(timeout=30)
    [row] = open_log().recent(1)  # the next start sees the writer is gone
    assert row["status"] == "lost" and f"pid {process.pid}" in row["error"]
    shown = run_llm(["logs", "-n", "1"])
    assert " lost" in shown.stdout.splitlines()[0]


def test_a_running_row_of_a_live_writer_is_left_alone():
    from llmtools.logs import open_log

    store = open_log()
    response_id = store.start(conversation_id="c", tool="llm", model="echo", messages=[], prompt="p")
    store.close()
    [row] = open_log().recent(1)
    assert (row["id"], row["status"], row["pid"]) == (response_id, "running", os.getpid())


def test_a_version_1_log_gains_the_pid_column(llmtools_home):
    import sqlite3

    from llmtools import logs

    path = llmtools_home / "data" / "logs.db"
    path.parent.mkdir(parents=True)
    old = sqlite3.connect(path)
    old.executescript(logs.SCHEMA.replace(",\n    pid INTEGER", "") + "PRAGMA user_version = 1;")
    old.execute("INSERT INTO responses (id, conversation_id, created, tool, model, messages, status)"
                " VALUES ('a', 'c', 'now', 'llm', 'echo', '[]', 'running')")
    old.commit()
    old.close()
    assert run_llm(["-m", "echo", "hi"]).status == 0
    rows = logs.open_log().recent(5)
    assert [(row["id"] == "a", row["status"]) for row in rows] == [(True, "running"), (False, "ok")]
