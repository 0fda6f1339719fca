"""Shared test setup: every test gets its own LLMTOOLS_HOME and no provider keys."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

ISOLATED_ENV = (
    "ANTHROPIC_API_KEY", "OPENAI_API_KEY", "ANTHROPIC_BASE_URL", "OPENAI_BASE_URL",
    "LLMTOOLS_MODEL", "LLMTOOLS_TIMEOUT", "LLMTOOLS_RETRIES", "LLMTOOLS_RETRY_BASE_DELAY",
    "LLMTOOLS_DEBUG", "LLMTOOLS_NO_DAEMON", "LLMTOOLS_PROMPT_CACHE", "XDG_CONFIG_HOME", "XDG_DATA_HOME",
    "XDG_CACHE_HOME",
)


@pytest.fixture(autouse=True)
def llmtools_home(tmp_path_factory, monkeypatch):
    home = tmp_path_factory.mktemp("home")
    for name in ISOLATED_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LLMTOOLS_HOME", str(home))
    # Most tests exercise commands in-process; tests of the daemon path opt back in
    # with monkeypatch.delenv("LLMTOOLS_NO_DAEMON").
    monkeypatch.setenv("LLMTOOLS_NO_DAEMON", "1")
    from llmtools import config

    config.load_config_cached.cache_clear()
    yield home
    _stop_daemon_in(home / "run")


def _stop_daemon_in(runtime_dir: Path) -> None:
    """A test that started a daemon must not leave it (or its workers) running.

    SIGTERM first so it closes its runtimes and browser; SIGKILL if it does not go.
    """
    import json
    import signal

    from llmtools.daemon.client import wait_for_exit

    pid_file = runtime_dir / "daemon.pid"
    try:
        pid = json.loads(pid_file.read_text())["pid"]
        os.kill(pid, signal.SIGTERM)
    except (OSError, ValueError, KeyError):
        return
    if not wait_for_exit(pid, timeout=10):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def command_path(name: str) -> str:
    """The installed console script next to this interpreter, else the checkout's bin/."""
    installed = Path(sys.executable).parent / name
    return str(installed if installed.exists() else REPO / "bin" / name)


@pytest.fixture
def write_config(llmtools_home):
    def write(text: str) -> Path:
        path = llmtools_home / "config" / "config.toml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        from llmtools import config

        config.load_config_cached.cache_clear()
        return path

    return write
