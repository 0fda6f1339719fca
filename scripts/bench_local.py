#!/usr/bin/env python3
"""Local-model speed through `llm` next to llama-cpp-python called directly, in one run.

    .venv/bin/python scripts/bench_local.py [--model PATH.gguf] [--runs 5] [--tokens 128]
                                            [--no-daemon-rows]

Rows (medians over --runs; runs of the different rows are interleaved, so a noisy machine
slows them alike):

- llama-cpp-python direct: one `Llama` in this process, `create_chat_completion(stream=True)`,
  model loaded once before timing. The ceiling.
- llm process: the real `llm` command (`--profile`), a new process per call, in-process
  provider (LLMTOOLS_NO_DAEMON=1): every call imports llama_cpp and loads the model, so
  its ttft is start-up + load + prompt; its tokens/s is generation alone.
- llm via daemon, 2nd call: the same command with the daemon holding the loaded model
  (the first call, which starts the daemon and loads the model, is shown separately).

Generation tokens/s is output tokens / (total - ttft), as `--profile` computes it, for
every row; greedy decoding (temperature 0) makes every row generate the same tokens.
Target: the `llm` rows at least 90% of direct. Without --model the SmolLM2 file is
taken from the models directory (pulled first if it is not there).

`--compare-root DIR` adds the same two `llm` rows run with another checkout's code
(PYTHONPATH=DIR; e.g. a `git worktree` of an older commit), interleaved with ours, so a
change's cost shows side by side on the same noisy machine.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
PROMPT = "Write a long story about a cat who learns to sail."
PROFILE = re.compile(r"ttft=(?P<ttft>[\d.]+)s total=(?P<total>[\d.]+)s .*out=(?P<out>\d+)tok")


def find_model(path: str | None) -> Path:
    if path:
        return Path(path).expanduser().resolve()
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from llmtools import localmodels

    return localmodels.pull("smollm2", progress=True).path


def direct_run(llama, tokens: int) -> dict:
    started = time.perf_counter()
    first = None
    pieces = 0
    for chunk in llama.create_chat_completion(messages=[{"role": "user", "content": PROMPT}],
                                              max_tokens=tokens, temperature=0, stream=True,
                                              repeat_penalty=1.1):  # as llm's local provider
        if chunk["choices"][0]["delta"].get("content"):
            if first is None:
                first = time.perf_counter() - started
            pieces += 1
    total = time.perf_counter() - started
    return {"ttft": first, "total": total, "out": pieces, "wall": total}


def llm_run(env: dict, model: Path, tokens: int) -> dict:
    argv = [str(BIN / "llm"), "-m", str(model), "--max-tokens", str(tokens), "--temperature", "0",
            "--profile", "-n", PROMPT]
    started = time.perf_counter()
    completed = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    match = PROFILE.search(completed.stderr)
    if completed.returncode != 0 or match is None:
        raise SystemExit(f"llm failed ({completed.returncode}): {completed.stderr.strip()}")
    return {"ttft": float(match["ttft"]), "total": float(match["total"]), "out": int(match["out"]),
            "wall": wall}


def rate(run: dict) -> float:
    generating = run["total"] - run["ttft"]
    return run["out"] / generating if generating > 0 else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="GGUF file (default: SmolLM2 from the models directory)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=128, help="max tokens per answer")
    parser.add_argument("--no-daemon-rows", action="store_true", help="skip the daemon rows")
    parser.add_argument("--compare-root", metavar="DIR",
                        help="also run the llm rows with the llmtools checkout in DIR")
    options = parser.parse_args()
    model = find_model(options.model)

    import llama_cpp

    variants = {"": os.environ.get("PYTHONPATH")}
    if options.compare_root:
        variants[f" [{Path(options.compare_root).name}]"] = str(Path(options.compare_root).resolve())
    envs = {}
    for label, pythonpath in variants.items():
        base = {**os.environ, "LLMTOOLS_HOME": tempfile.mkdtemp(prefix="llmtools-bench-")}
        base.pop("PYTHONDONTWRITEBYTECODE", None)  # cached bytecode, as users have it
        if pythonpath:
            base["PYTHONPATH"] = pythonpath
        daemon_env = {**base, "LLMTOOLS_HOME": tempfile.mkdtemp(prefix="llmtools-bench-daemon-")}
        envs[label] = ({**base, "LLMTOOLS_NO_DAEMON": "1"}, daemon_env)
    use_daemon = not options.no_daemon_rows

    llama = llama_cpp.Llama(model_path=str(model), n_ctx=8192, verbose=False)  # as llm loads it
    direct_run(llama, 8)  # warm up: first decode allocates buffers
    for plain_env, _ in envs.values():
        llm_run(plain_env, model, 8)  # warm the page cache and .pyc files

    rows: dict[str, list[dict]] = {"llama-cpp-python direct (in process)": []}
    runners = []
    daemon_first = None
    for label, (plain_env, daemon_env) in envs.items():
        rows[f"llm process, model loaded per call{label}"] = []
        runners.append((f"llm process, model loaded per call{label}", plain_env))
        if use_daemon:
            try:
                first = llm_run(daemon_env, model, options.tokens)
            except SystemExit as error:
                print(f"(daemon rows skipped: {error})", file=sys.stderr)
                continue
            daemon_first = daemon_first or first
            rows[f"llm via daemon, model kept loaded{label}"] = []
            runners.append((f"llm via daemon, model kept loaded{label}", daemon_env))
    try:
        for _ in range(options.runs):
            rows["llama-cpp-python direct (in process)"].append(direct_run(llama, options.tokens))
            for name, env in runners:
                rows[name].append(llm_run(env, model, options.tokens))
    finally:
        for _, daemon_env in envs.values():
            subprocess.run([str(BIN / "llm"), "daemon", "stop"], env=daemon_env,
                           capture_output=True, check=False)
    llama.close()

    size = model.stat().st_size / 1e6
    print(f"model {model.name} ({size:.1f} MB), {options.tokens} max tokens, temperature 0, "
          f"median of {options.runs} runs, {os.cpu_count()} CPUs")
    print(f"{'':52} {'ttft':>8} {'gen tok/s':>10} {'of direct':>10} {'out tok':>8} {'wall':>8}")
    direct_rate = statistics.median(rate(run) for run in rows["llama-cpp-python direct (in process)"])
    for name, runs in rows.items():
        ttft = statistics.median(run["ttft"] for run in runs)
        speed = statistics.median(rate(run) for run in runs)
        out = statistics.median(run["out"] for run in runs)
        wall = statistics.median(run["wall"] for run in runs)
        print(f"{name:52} {ttft:7.3f}s {speed:10.1f} {speed / direct_rate:9.0%} {out:8.0f} {wall:7.2f}s")
    if daemon_first is not None:
        print(f"{'llm via daemon, first call (starts, loads)':52} {daemon_first['ttft']:7.3f}s "
              f"{rate(daemon_first):10.1f} {rate(daemon_first) / direct_rate:9.0%} "
              f"{daemon_first['out']:8d} {daemon_first['wall']:7.2f}s")


if __name__ == "__main__":
    main()
