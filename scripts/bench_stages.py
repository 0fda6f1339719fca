#!/usr/bin/env python3
"""What one pipeline stage costs, next to starting Python, and where the time goes.

    .venv/bin/python scripts/bench_stages.py [--runs 15] [--skip-daemon] [--compare-root DIR]

Part 1, side by side in one run (medians; rows interleaved run by run, so a noisy moment
slows them alike), each with its ratio to the venv's bare `python -c pass`:

- `llm --help`                       target <= 5x bare Python
- `llm -m echo -n hi`                (no log)
- `llm -m echo hi`                   (logged)  target <= 90 ms, under 7x bare Python
- a 10-stage `llm -m echo -S` pipeline         target <= 0.8 s on 2 cores
- through the warm daemon: a loopback Anthropic server that answers at once, and the
  local SmolLM2 model generating one token; each less the model's own time (the fake
  server's is ~0; the local model's is measured on a warm `Llama` in this process).
  target <= 100 ms beyond the model's own time

Part 2, the breakdown of each hot path: interpreter start (bare Python), imports (from
`python -X importtime`, by top-level package; a package's figure includes the standard
library modules it pulls in first), and the rest (config, the exchange, the log write,
the daemon round trip, rendering). The log write is also shown as logged minus unlogged.

`--compare-root DIR` runs the llmtools rows a second time with another checkout's code
(PYTHONPATH=DIR, e.g. a `git worktree` of an older commit), interleaved with ours.
Bytecode is cached as users have it (PYTHONDONTWRITEBYTECODE is dropped).
"""

from __future__ import annotations

import argparse
import collections
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
PYTHON = sys.executable
STAGES = 10


def command(name: str) -> str:
    installed = BIN / name
    return str(installed if installed.exists() else REPO / "bin" / name)


LLM = command("llm")


def wall(argv: list[str], env: dict, stdin: bytes | None = None, shell: bool = False) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv if not shell else argv[0], input=stdin, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, env=env, shell=shell, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{argv} failed ({done.returncode}): {done.stderr.decode()[-500:]}")
    return elapsed


def pipeline(stages: int) -> str:
    first = f"printf 'a line of text\\n' | {LLM} -m echo -S -n one"
    middle = "".join(f" | {LLM} -m echo -S -n step{n}" for n in range(2, stages))
    return f"set -e; {first}{middle} | {LLM} -m echo -n last"


def base_env(home: str) -> dict:
    env = {**os.environ, "LLMTOOLS_HOME": home}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    for name in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "ANTHROPIC_BASE_URL", "OPENAI_BASE_URL"):
        env.pop(name, None)
    return env


# --- part 1: side by side ----------------------------------------------------------------------


def plain_rows(env: dict, other_root: str | None) -> list[tuple[str, list[str], dict, bool]]:
    no_daemon = {**env, "LLMTOOLS_NO_DAEMON": "1"}
    cases = [
        ("llm --help", [LLM, "--help"], False),
        ("llm -m echo -n hi", [LLM, "-m", "echo", "-n", "hi"], False),
        ("llm -m echo hi (logged)", [LLM, "-m", "echo", "hi"], False),
        (f"{STAGES}-stage echo pipeline", [pipeline(STAGES)], True),
    ]
    rows = [("python -c pass", [PYTHON, "-c", "pass"], no_daemon, False)]
    rows += [(label, argv, no_daemon, shell) for label, argv, shell in cases]
    if other_root:
        other_env = {**no_daemon, "PYTHONPATH": other_root}
        rows += [(f"{label} [{Path(other_root).name}]", argv, other_env, shell) for label, argv, shell in cases]
    return rows


def run_plain(runs: int, env: dict, other_root: str | None) -> dict[str, list[float]]:
    rows = plain_rows(env, other_root)
    for _, argv, row_env, shell in rows:
        wall(argv, row_env, shell=shell)  # page cache and bytecode
    times: dict[str, list[float]] = {label: [] for label, *_ in rows}
    for _ in range(runs):
        for label, argv, row_env, shell in rows:
            times[label].append(wall(argv, row_env, shell=shell))
    return times


def run_anthropic(runs: int, env: dict) -> list[float]:
    from tests.fakes import Reply
    from tests.fakes.anthropic_server import AnthropicFakeServer

    with AnthropicFakeServer() as server:
        server.script(*[Reply(text="ok", chunks=1) for _ in range(runs + 4)])
        daemon_env = {**env, "ANTHROPIC_API_KEY": "sk-bench", "ANTHROPIC_BASE_URL": server.base_url}
        argv = [LLM, "-m", "claude-sonnet-4-6", "-n", "hi"]
        subprocess.run([LLM, "daemon", "start"], env=daemon_env, check=True, capture_output=True)
        try:
            wall(argv, daemon_env)  # the daemon imports the SDK and opens its pool once
            return [wall(argv, daemon_env) for _ in range(runs)]
        finally:
            subprocess.run([LLM, "daemon", "stop"], env=daemon_env, capture_output=True)


def run_local(runs: int, env: dict) -> tuple[list[float], list[float]]:
    """(wall of `llm` through the warm daemon, the model's own time on a warm Llama here)."""
    from llama_cpp import Llama

    from llmtools import localmodels

    model = localmodels.pull("smollm2", progress=True).path
    argv = [LLM, "-m", str(model), "-n", "--max-tokens", "1", "--temperature", "0", "Say hi."]
    subprocess.run([LLM, "daemon", "start"], env=env, check=True, capture_output=True)
    try:
        wall(argv, env)  # loads the model in the daemon's worker
        through_daemon = [wall(argv, env) for _ in range(runs)]
    finally:
        subprocess.run([LLM, "daemon", "stop"], env=env, capture_output=True)
    llama = Llama(model_path=str(model), n_ctx=2048, verbose=False)
    own = []
    for _ in range(runs + 1):
        started = time.perf_counter()
        for _chunk in llama.create_chat_completion(messages=[{"role": "user", "content": "Say hi."}],
                                                   max_tokens=1, temperature=0, stream=True):
            pass
        own.append(time.perf_counter() - started)
    return through_daemon, own[1:]


# --- part 2: where the time goes ---------------------------------------------------------------


def import_breakdown(argv: list[str], env: dict) -> dict[str, float]:
    """Milliseconds of imports by top-level package, from the median of three importtime runs."""
    samples: list[dict[str, float]] = []
    for _ in range(3):
        done = subprocess.run([PYTHON, "-X", "importtime", *argv], env=env, capture_output=True, check=False)
        groups: dict[str, float] = collections.Counter()
        for line in done.stderr.decode().splitlines():
            if not line.startswith("import time:") or "cumulative" in line:
                continue
            _, cumulative, name = line.split("|")
            if name.startswith("  "):
                continue  # nested: counted in its top-level importer's cumulative figure
            package = name.strip().split(".")[0]
            if package in ("site", "encodings", "_distutils_hack") or name.strip().startswith("_frozen"):
                continue  # part of bare start-up
            group = package if package in ("click", "llmtools") else (
                "sdks" if package in ("anthropic", "openai", "httpx", "llama_cpp") else "other")
            groups[group] += int(cumulative) / 1000
        samples.append(groups)
    return {group: statistics.median(sample.get(group, 0.0) for sample in samples)
            for group in sorted({group for sample in samples for group in sample})}


def print_breakdown(times: dict[str, list[float]], env: dict) -> None:
    floor = statistics.median(times["python -c pass"]) * 1000
    no_daemon = {**env, "LLMTOOLS_NO_DAEMON": "1"}
    paths = [("llm --help", ["-m", "llmtools.cli.llm", "--help"]),
             ("llm -m echo -n hi", ["-m", "llmtools.cli.llm", "-m", "echo", "-n", "hi"]),
             ("llm -m echo hi (logged)", ["-m", "llmtools.cli.llm", "-m", "echo", "hi"])]
    print("\nwhere the time goes (ms): interpreter | imports by package | the rest")
    for label, argv in paths:
        total = statistics.median(times[label]) * 1000
        imports = import_breakdown(argv, no_daemon)
        rest = total - floor - sum(imports.values())
        shown = " ".join(f"{group}={value:.1f}" for group, value in imports.items())
        print(f"  {label:<28} total {total:6.1f} = python {floor:5.1f} | {shown} | rest {rest:6.1f}")
    logged = statistics.median(times["llm -m echo hi (logged)"]) * 1000
    unlogged = statistics.median(times["llm -m echo -n hi"]) * 1000
    print(f"  the log write (logged - unlogged): {logged - unlogged:.1f} ms")


def row(label: str, found: list[float], baseline: float, target: str = "") -> str:
    median = statistics.median(found)
    return (f"{label:<52} {median * 1000:8.1f}ms {min(found) * 1000:8.1f}ms "
            f"{median / baseline:7.1f}x  {target}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--skip-daemon", action="store_true", help="only the rows without a daemon")
    parser.add_argument("--compare-root", metavar="DIR")
    options = parser.parse_args()
    env = base_env(tempfile.mkdtemp(prefix="llmtools-bench-"))
    other = str(Path(options.compare_root).resolve()) if options.compare_root else None
    times = run_plain(options.runs, env, other)
    baseline = statistics.median(times["python -c pass"])
    targets = {"llm --help": "target <= 5x", "llm -m echo hi (logged)": "target <= 90 ms",
               f"{STAGES}-stage echo pipeline": "target <= 800 ms"}
    print(f"{'what':<52} {'median':>10} {'best':>10} {'x python':>8}")
    for label, found in times.items():
        print(row(label, found, baseline, targets.get(label, "")))
    if not options.skip_daemon:
        anthropic = run_anthropic(options.runs, base_env(tempfile.mkdtemp(prefix="llmtools-bench-")))
        print(row("loopback Anthropic via warm daemon (answers at once)", anthropic, baseline,
                  "target <= 100 ms"))
        through, own = run_local(options.runs, base_env(tempfile.mkdtemp(prefix="llmtools-bench-")))
        overhead = [statistics.median(through) - statistics.median(own)]
        print(row("local SmolLM2, 1 token via warm daemon", through, baseline))
        print(row("  its own time on a warm Llama in-process", own, baseline))
        print(row("  overhead beyond the model's own time", overhead, baseline, "target <= 100 ms"))
    print_breakdown(times, env)


if __name__ == "__main__":
    main()
