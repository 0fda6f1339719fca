"""Private state: nothing under the data directory is readable by other users, including a
state directory an older version created with looser modes."""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

from llmtools.providers.script import cursor_path, requests_path
from tests.helpers import run_llm
from tests.test_exec_cli import Script, block, run_exec


def _loose_modes(root: Path) -> list[str]:
    """Paths under `root` that group or others can reach (files the model's code wrote in a
    thread's work directory are behind its 0700 directories, and are the code's business)."""
    found = []
    for directory, subdirectories, files in os.walk(root):
        if Path(directory).name == "work":
            subdirectories[:] = []
            files = []
        for name in [*subdirectories, *files]:
            path = Path(directory, name)
            if stat.S_IMODE(path.lstat().st_mode) & 0o077:
                found.append(f"{path.relative_to(root)} {stat.S_IMODE(path.lstat().st_mode):o}")
    return found


def _use_everything(tmp_path: Path) -> Script:
    assert run_llm(["-m", "echo", "a prompt to log"]).status == 0
    script = Script(tmp_path, block("Working.", "open('out.txt', 'w').write('x')\nsecret = 'kept'"), "Done.")
    result = run_exec(["-m", script.model, "--thread", "modes", "go"])
    assert result.status == 0, result.stderr
    return script


def test_everything_under_the_data_directory_is_private(tmp_path, llmtools_home, monkeypatch):
    monkeypatch.chdir(tmp_path)
    script = _use_everything(tmp_path)
    data = llmtools_home / "data"
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert _loose_modes(data) == []
    for path in (data / "logs.db", cursor_path(script.path), requests_path(script.path)):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert not Path(f"{script.path}.cursor").exists() and not Path(f"{script.path}.requests.jsonl").exists()
    snapshots = list((data / "runtime").glob("*.thread/snapshot"))
    assert snapshots and all(stat.S_IMODE(path.stat().st_mode) == 0o600 for path in snapshots)


def test_a_state_directory_made_with_the_old_modes_is_made_private(tmp_path, llmtools_home, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = llmtools_home / "data"
    (data / "runtime").mkdir(parents=True)
    database = sqlite3.connect(data / "logs.db")
    database.execute("PRAGMA journal_mode=WAL")
    database.execute("CREATE TABLE t (x)")
    database.execute("INSERT INTO t VALUES (1)")
    database.commit()  # kept open: its WAL and shm files stay, as a running reader keeps them
    (data / "runtime" / "modes.snapshot").write_bytes(b"not a real snapshot")
    old = [data, data / "runtime", data / "logs.db", data / "logs.db-wal", data / "logs.db-shm",
           data / "runtime" / "modes.snapshot"]
    for path in old:
        path.chmod(0o755 if path.is_dir() else 0o644)
    assert len(_loose_modes(llmtools_home)) >= 5
    _use_everything(tmp_path)
    database.close()
    assert _loose_modes(data) == []
    assert stat.S_IMODE(data.stat().st_mode) == 0o700


def test_the_chat_history_directory_is_made_private(llmtools_home):
    from llmtools.chat.terminal import history_path

    old_umask = os.umask(0o022)
    try:
        path = history_path()
    finally:
        os.umask(old_umask)
    assert path.parent == llmtools_home / "data"
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
