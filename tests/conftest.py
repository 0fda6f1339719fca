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
    "LLMTOOLS_DEBUG", "LLMTOOLS_NO_DAEMON", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME",
)


@pytest.fixture(autouse=True)
def llmtools_home(tmp_path_factory, monkeypatch) -> Path:
    home = tmp_path_factory.mktemp("home")
    for name in ISOLATED_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LLMTOOLS_HOME", str(home))
    from llmtools import config

    config.load_config_cached.cache_clear()
    return home


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
