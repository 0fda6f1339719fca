"""Starting our own Python child processes (the daemon, model workers, runtime workers).

Every child runs this same llmtools, and never code from wherever the user happens to
be: `-P` keeps the working directory off `sys.path` (a `llmtools/` folder where a command
runs would otherwise shadow the installed package), and this package's root comes first on
PYTHONPATH so a checkout's `bin/` shims start children from the same checkout.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

PACKAGE_ROOT = str(Path(__file__).resolve().parents[1])


def python_command(module: str, *args: str) -> list[str]:
    """The command line that runs `python -m module args...` in isolation from the cwd."""
    return [sys.executable, "-P", "-m", module, *args]


def child_environment(base: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ if base is None else base)
    existing = env.get("PYTHONPATH")
    env["PYTHONPATH"] = PACKAGE_ROOT + (os.pathsep + existing if existing else "")
    return env
