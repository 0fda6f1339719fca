#!/usr/bin/env python3
"""What the daemon buys, side by side in one run.

    .venv/bin/python scripts/bench_daemon.py [--runs 10] [--skip-local]

1. Time to first answer byte of `llm -m claude-sonnet-4-6` against a loopback Anthropic
   server that answers at once, so the figure is all client overhead: through the warm
   daemon, and in-process (LLMTOOLS_NO_DAEMON=1, which imports the SDK every time).
   Target: under 150 ms through the daemon.
2. Ten sequential `llm -m local:smollm2` calls with the daemon (model loaded once) and
   without it (loaded by every call).
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

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
BIN = Path(sys.executable).parent
LLM = str(BIN / "llm") if (BIN / "llm").exists() else str(REPO / "bin" / "llm")


def time_to_first_byte(argv: list[str], env: dict) -> tuple[float, float]:
    """(seconds to the first byte on stdout, seconds to exit) of one process."""
    started = time.perf_counter()
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    first = process.stdout.read(1)
    first_at = time.perf_counter() - started
    rest, errors = process.communicate()
    if process.returncode != 0 or not first:
        raise SystemExit(f"{' '.join(argv)} failed: {errors.decode()}")
    return first_at, time.perf_counter() - started


def row(label: str, times: list[float], baseline: float | None = None) -> str:
    median = statistics.median(times)
    ratio = f"{baseline / median:6.1f}x faster" if baseline else ""
    return f"  {label:<44} median {median * 1000:8.1f} ms   best {min(times) * 1000:8.1f} ms  {ratio}"


def bench_anthropic(runs: int) -> None:
    from tests.fakes import Reply
    from tests.fakes.anthropic_server import AnthropicFakeServer

    home = tempfile.mkdtemp(prefix="llmtools-bench-")
    with AnthropicFakeServer() as server:
        server.script(*[Reply(text="ok", chunks=1) for _ in range(4 * runs + 4)])
        env = {**os.environ, "LLMTOOLS_HOME": home, "ANTHROPIC_API_KEY": "sk-bench",
               "ANTHROPIC_BASE_URL": server.base_url}
        argv = [LLM, "-m", "claude-sonnet-4-6", "-n", "hi"]
        subprocess.run([LLM, "daemon", "start"], env=env, check=True, capture_output=True)
        time_to_first_byte(argv, env)  # the daemon imports the SDK and opens its pool once
        warm = [time_to_first_byte(argv, env)[0] for _ in range(runs)]
        subprocess.run([LLM, "daemon", "stop"], env=env, check=True, capture_output=True)
        direct_env = {**env, "LLMTOOLS_NO_DAEMON": "1"}
        direct = [time_to_first_byte(argv, direct_env)[0] for _ in range(runs)]
        bare = [time_to_first_byte([sys.executable, "-c", "print('x')"], env)[0] for _ in range(runs)]
    print("time to first answer byte, loopback Anthropic server answering at once:")
    print(row("python -c print (process start floor)", bare))
    print(row("llm in-process (imports anthropic)", direct))
    print(row("llm through the warm daemon", warm, statistics.median(direct)))
    overhead = statistics.median(warm)
    print(f"  client overhead through the daemon: {overhead * 1000:.0f} ms (target < 150 ms)")


def bench_local(runs: int) -> None:
    from llmtools import localmodels

    model = localmodels.pull("smollm2", progress=True).path  # the user's copy; idempotent
    home = tempfile.mkdtemp(prefix="llmtools-bench-")
    env = {**os.environ, "LLMTOOLS_HOME": home}
    argv = [LLM, "-m", str(model), "-n", "--max-tokens", "8", "--temperature", "0", "Say hi."]
    subprocess.run([LLM, "daemon", "start"], env=env, check=True, capture_output=True)
    started = time.perf_counter()
    warm = [time_to_first_byte(argv, env)[1] for _ in range(runs)]
    warm_total = time.perf_counter() - started
    subprocess.run([LLM, "daemon", "stop"], env=env, check=True, capture_output=True)
    direct_env = {**env, "LLMTOOLS_NO_DAEMON": "1"}
    started = time.perf_counter()
    direct = [time_to_first_byte(argv, direct_env)[1] for _ in range(runs)]
    direct_total = time.perf_counter() - started
    print(f"{runs} sequential `llm -m SmolLM2.gguf --max-tokens 8` calls:")
    print(row("without the daemon (model loaded per call)", direct))
    print(row("with the daemon (model loaded once)", warm, statistics.median(direct)))
    print(f"  totals: {direct_total:.2f} s without, {warm_total:.2f} s with "
          "(the first call with the daemon includes starting it)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--skip-local", action="store_true")
    options = parser.parse_args()
    bench_anthropic(options.runs)
    if not options.skip_local:
        bench_local(options.runs)


if __name__ == "__main__":
    main()
