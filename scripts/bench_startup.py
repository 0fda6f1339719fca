#!/usr/bin/env python3
"""Start-up time of the commands, side by side with bare Python (ratios survive a noisy machine).

    .venv/bin/python scripts/bench_startup.py [--runs 21] [--compare /path/to/other/llm]

Prints the median and best wall time of each command over --runs runs. --compare adds
another `llm` (e.g. simonw/llm installed in its own venv) running `--help` and `--version`.
Target: `llm --help` and `llm --version` under 100 ms on a 2-core machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def measure(argv: list[str], runs: int, env: dict, stdin: bytes | None = None) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(argv, input=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       env=env, check=False)
        times.append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--compare", action="append", default=[],
                        help="another llm executable to time with --help/--version")
    options = parser.parse_args()
    home = tempfile.mkdtemp(prefix="llmtools-bench-")
    env = {**os.environ, "LLMTOOLS_HOME": home, "LLMTOOLS_NO_DAEMON": "1"}
    llm = str(BIN / "llm")
    cases: list[tuple[str, list[str], bytes | None]] = [
        ("python -c pass", [sys.executable, "-c", "pass"], None),
        ("llm --version", [llm, "--version"], None),
        ("llm --help", [llm, "--help"], None),
        ("llm prompt --help", [llm, "prompt", "--help"], None),
        ("llm -m echo hi (stack plumbing + log)", [llm, "-m", "echo", "hi"], None),
        ("echo text | llm -m echo -S q", [llm, "-m", "echo", "-S", "q"], b"text\n"),
    ]
    for name in ("llm-fetch", "llm-pdf", "llm-exec"):
        if (BIN / name).exists():
            cases.append((f"{name} --help", [str(BIN / name), "--help"], None))
    for other in options.compare:
        cases.append((f"{other} --version", [other, "--version"], None))
        cases.append((f"{other} --help", [other, "--help"], None))
    measure(cases[0][1], 3, env)  # warm the page cache
    baseline = None
    print(f"{'command':<48} {'median':>9} {'best':>9} {'x python':>9}")
    for label, argv, stdin in cases:
        times = measure(argv, options.runs, env, stdin)
        median = statistics.median(times)
        baseline = baseline or median
        print(f"{label:<48} {median * 1000:8.1f}ms {min(times) * 1000:8.1f}ms {median / baseline:8.1f}x")


if __name__ == "__main__":
    main()
