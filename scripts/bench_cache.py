#!/usr/bin/env python3
"""Prompt caching on a local model: time to first token of each step of an llm-exec thread.

    .venv/bin/python scripts/bench_cache.py [--model PATH.gguf] [--steps 6] [--runs 3]
                                            [--result-chars 600] [--no-daemon]

An llm-exec thread re-sends everything on every step: the system prompt with the helpers'
documentation, the task, and each earlier step's code and <helpers_result>. This replays
such a thread against the local model (SmolLM2 by default, from the models directory)
through the daemon's model worker, as llm-exec's calls go, building each step's messages
the way `llmtools.codeact` does: the model's own short reply as the assistant turn (greedy,
so every run is alike), then a result turn of --result-chars characters.

Step 1 starts cold in both columns (the KV cache is dropped first), as a new thread does.
Rows, side by side: caching on (the worker's llama.cpp KV cache keeps the prefix, so only
the new suffix is evaluated) and caching off (`prompt_cache = false`: the KV cache is
dropped before each step, the whole prompt is evaluated, as a fresh process would). Each
figure is the median over --runs threads; "reused" is the prompt tokens the KV cache
already held (reported as cache reads). Target: step 6's ttft within 1.5x of step 1's
with caching on.

--no-daemon runs the model worker under this process instead (the same worker code).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

TASK = "Count the Python files under src/ and say which one is the longest."


def find_model(path: str | None) -> Path:
    if path:
        return Path(path).expanduser().resolve()
    from llmtools import localmodels

    return localmodels.pull("smollm2", progress=True).path


def result_text(step: int, chars: int) -> str:
    line = f"src/module_{step}_{{n}}.py: {{n}}0 lines\n"
    text = "".join(line.format(n=n) for n in range(chars // len(line) + 1))
    return text[:chars]


def run_thread(spec, stream_factory, steps: int, result_chars: int, cache: bool) -> list[dict]:
    from llmtools import stack
    from llmtools.codeact.feedback import result_message, system_prompt
    from llmtools.exchange import Exchange
    from llmtools.providers.base import Request
    from llmtools.runtime import helpers

    system = stack.message("system", system_prompt(helpers.describe(), statement_timeout=120,
                                                   max_steps=10, cwd="/tmp"), tool="llm-exec")
    messages = [system, stack.message("user", TASK)]
    rows = []
    for step in range(1, steps + 1):
        # Step 1 starts cold either way (the KV cache dropped): what a new thread pays.
        request = Request(messages=list(messages), max_tokens=24, temperature=0.0,
                          stop=["</helpers>"], cache=cache and step > 1)
        exchange = Exchange(spec, request, tool="bench", log=False, stream_factory=stream_factory)
        outcome = exchange.run()
        rows.append({"ttft": outcome.ttft_s or outcome.total_s, "prompt": outcome.input_tokens,
                     "reused": outcome.cache_read_tokens or 0})
        messages.append({"role": "assistant", "content": outcome.text})
        messages.append(result_message(result_text(step, result_chars), None, "bench", step))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="GGUF file (default: SmolLM2 from the models directory)")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--result-chars", type=int, default=600)
    parser.add_argument("--no-daemon", action="store_true")
    parser.add_argument("--threads", type=int, help="llama.cpp threads (n_threads; default: its own)")
    options = parser.parse_args()
    model = find_model(options.model)
    os.environ["LLMTOOLS_HOME"] = tempfile.mkdtemp(prefix="llmtools-bench-cache-")
    if options.no_daemon:
        os.environ["LLMTOOLS_NO_DAEMON"] = "1"
    from llmtools import services
    from llmtools.config import resolve_model

    spec = resolve_model(str(model))
    if options.threads:
        spec.options.update(n_threads=options.threads, n_threads_batch=options.threads)
    if options.no_daemon:
        from llmtools.providers import load_provider

        provider = load_provider(spec)
        factory = lambda _spec, request: provider.stream(request)  # noqa: E731  (one warm worker)
    else:
        factory = services.chat_stream(spec)
    table: dict[bool, list[list[dict]]] = {True: [], False: []}
    started = time.perf_counter()
    try:
        run_thread(spec, factory, 1, options.result_chars, True)  # load the model, warm up
        for _ in range(options.runs):
            for cache in (True, False):  # interleaved, so a noisy machine slows both alike
                table[cache].append(run_thread(spec, factory, options.steps, options.result_chars, cache))
    finally:
        if options.no_daemon:
            provider.close()
        else:
            services.daemon_control().DaemonClient().stop()
    print(f"model {model.name}, {options.steps} steps, result turns of {options.result_chars} chars, "
          f"median of {options.runs} threads, {os.cpu_count()} CPUs, "
          f"{'in-process worker' if options.no_daemon else 'daemon model worker'}, "
          f"n_threads {options.threads or 'default'}, load average {os.getloadavg()[0]:.1f} "
          f"({time.perf_counter() - started:.0f}s)")
    print(f"{'step':>4} {'prompt tok':>10} | {'cache on: ttft':>14} {'reused':>7} | "
          f"{'cache off: ttft':>15} {'reused':>7}")
    for index in range(options.steps):
        def median(cache: bool, key: str, index: int = index) -> float:
            return statistics.median(run[index][key] for run in table[cache])

        print(f"{index + 1:4d} {median(True, 'prompt'):10.0f} | {median(True, 'ttft'):13.3f}s "
              f"{median(True, 'reused'):7.0f} | {median(False, 'ttft'):14.3f}s {median(False, 'reused'):7.0f}")
    first = statistics.median(run[0]["ttft"] for run in table[True])
    last = statistics.median(run[-1]["ttft"] for run in table[True])
    last_off = statistics.median(run[-1]["ttft"] for run in table[False])
    print(f"cache on: step {options.steps} ttft / step 1 ttft = {last / first:.2f}x (target <= 1.5x); "
          f"cache off: step {options.steps} ttft = {last_off / first:.2f}x step 1 on")


if __name__ == "__main__":
    main()
