"""The atheris fuzz targets (tests/fuzz/), run for a few seconds each as part of the suite.

A crash leaves its input in the test's tmp dir and fails the test, with the input in the
message: turn it into a regression test beside the code it broke.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

FUZZ_DIR = Path(__file__).parent / "fuzz"
SECONDS = int(os.environ.get("LLMTOOLS_FUZZ_SECONDS", "4"))


@pytest.mark.parametrize("target", ["fuzz_stack", "fuzz_config"])
def test_fuzz_target_finds_no_crash(target, tmp_path):
    import importlib

    seeds = importlib.import_module(f"tests.fuzz.{target}").SEEDS
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for index, seed in enumerate(seeds):
        (corpus / f"seed{index}").write_bytes(seed)
    repo = FUZZ_DIR.parent.parent
    completed = subprocess.run(
        [sys.executable, str(FUZZ_DIR / f"{target}.py"), f"-max_total_time={SECONDS}",
         "-rss_limit_mb=2048", "-timeout=10", f"-artifact_prefix={tmp_path}/", str(corpus)],
        capture_output=True, text=True, timeout=SECONDS + 120, cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(repo)})
    crashes = sorted(path for path in tmp_path.iterdir() if path.name.startswith(("crash-", "timeout-", "oom-")))
    found = [(path.name, path.read_bytes()[:300]) for path in crashes]
    assert completed.returncode == 0 and not found, (found, completed.stderr[-3000:])
    assert "Done" in completed.stderr or "DONE" in completed.stderr or "pulse" in completed.stderr
