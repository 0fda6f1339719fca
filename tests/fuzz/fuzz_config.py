"""Fuzz target: loading config.toml (parse, schema check, model resolution) with atheris.

    python tests/fuzz/fuzz_config.py -max_total_time=60 [corpus_dir]

Whatever the file says, loading it ends in a config or an LlmtoolsError with a documented
status (65 for the file, 2 for a name that cannot be used), never another exception.
tests/test_fuzz.py runs this for a few seconds as part of the suite.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports():
    from llmtools import config
    from llmtools.errors import LlmtoolsError


_FILE = Path(tempfile.mkdtemp(prefix="fuzz-config-")) / "config.toml"


def one_input(data: bytes) -> None:
    _FILE.write_bytes(data)
    try:
        loaded = config.load_config(_FILE)
    except LlmtoolsError:
        return
    names = [None, "echo", *list(loaded.get("models") or {})[:3], *list(loaded.get("aliases") or {})[:3]]
    for name in names:
        try:
            config.resolve_model(name, loaded)
        except LlmtoolsError:
            pass
    for key, table in (("timeout", None), ("max_steps", "exec"), ("memory_mb", "exec")):
        try:
            config.setting(key, 1, table=table, config=loaded, positive=True)
        except LlmtoolsError:
            pass


SEEDS = [
    b'default_model = "echo"\ntimeout = 5\n[aliases]\nfast = "echo"\n',
    b'[models.q]\nbase_url = "http://127.0.0.1:9/v1"\ncontext_size = 4096\nmodle = "x"\n',
    b'[models.l]\nprovider = "local"\npath = "/nonexistent.gguf"\n[exec]\nhelpers = ["json"]\n',
    b'[providers.openai]\nbase_url = ""\napi_key = "k"\n',
]


def main() -> None:
    for name in ("LLMTOOLS_MODEL", "ANTHROPIC_API_KEY", "OPENAI_API_KEY"):
        os.environ.pop(name, None)
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
