#!/usr/bin/env python3
"""Start-up time of the commands, side by side with bare Python (ratios survive a noisy machine).

    .venv/bin/python scripts/bench_startup.py [--runs 21] [--compare /path/to/other/llm]
                                              [--compare-root DIR]

Prints the median and best wall time of each command over --runs runs. --compare adds
another `llm` (e.g. simonw/llm installed in its own venv) running `--help` and `--version`.
--compare-root runs every llmtools row a second time with another checkout's code
(PYTHONPATH=DIR, e.g. a `git worktree` of an older commit), the two interleaved run by run,
so a change's cost shows on the same noisy machine. Bytecode is cached as users have it
(PYTHONDONTWRITEBYTECODE is dropped: otherwise every run times the compiler).
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


def measure_once(argv: list[str], env: dict, stdin: bytes | None = None) -> float:
    started = time.perf_counter()
    subprocess.run(argv, input=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env=env, check=False)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--compare", action="append", default=[],
                        help="another llm executable to time with --help/--version")
    parser.add_argument("--compare-root", metavar="DIR",
                        help="also time the llmtools rows with the llmtools checkout in DIR")
    options = parser.parse_args()
    home = tempfile.mkdtemp(prefix="llmtools-bench-")
    env = {**os.environ, "LLMTOOLS_HOME": home, "LLMTOOLS_NO_DAEMON": "1"}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
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
    # (label, argv, stdin, env): ours, then the same llmtools rows with the other checkout.
    rows = [(label, argv, stdin, env) for label, argv, stdin in cases]
    if options.compare_root:
        root = str(Path(options.compare_root).resolve())
        other_env = {**env, "PYTHONPATH": root}
        rows += [(f"{label} [{Path(root).name}]", argv, stdin, other_env)
                 for label, argv, stdin in cases[1:] if argv[0].startswith(str(BIN))]
    for _, argv, stdin, row_env in rows:
        measure_once(argv, row_env, stdin)  # warm the page cache and write the bytecode
    times: dict[str, list[float]] = {label: [] for label, *_ in rows}
    for _ in range(options.runs):  # interleaved: a noisy moment slows every row alike
        for label, argv, stdin, row_env in rows:
            times[label].append(measure_once(argv, row_env, stdin))
    baseline = statistics.median(times[rows[0][0]])
    print(f"{'command':<58} {'median':>9} {'best':>9} {'x python':>9}")
    for label, found in times.items():
        median = statistics.median(found)
        print(f"{label:<58} {median * 1000:8.1f}ms {min(found) * 1000:8.1f}ms {median / baseline:8.1f}x")


if __name__ == "__main__":
    main()
