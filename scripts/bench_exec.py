#!/usr/bin/env python3
"""How much llm-exec adds per code block, apart from the model.

    .venv/bin/python scripts/bench_exec.py [--blocks N] [--starts N] [--daemon] [--no-sandbox]

Three figures, each the median and 95th percentile over N blocks:

  runtime round trip   RuntimeManager.execute() of a small block in a warm worker:
                       pipe, JSON, statement-by-statement execution, output capture
  per statement        the same for a 20-statement block, divided by 20
  loop per block       the whole llm-exec loop (llmtools.codeact) with the scripted
                       model: the model call's logging, prompt assembly, reading the
                       stream for </helpers>, running the block, formatting the result;
                       the time spent inside the model's stream is subtracted

Then the cost of the sandbox, side by side for `--sandbox off` and `workspace` (bubblewrap;
skipped where it cannot run, or with --no-sandbox): runtime start (a fresh thread's first
block, worker start included), the runtime round trip and the loop per block as above, and
a helper's model call (llm_call on the echo model, which goes over the worker's channel
to the parent in both modes).

--daemon measures the runtime round trip through the daemon too (it is started if
needed, in the temporary LLMTOOLS_HOME this script uses, and stopped at the end).
Target: under 20 ms per block excluding the model.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def summary(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return f"median {statistics.median(ordered) * 1000:7.2f} ms   p95 {p95 * 1000:7.2f} ms"


def time_executes(runtimes, thread: str, code: str, count: int, **options) -> list[float]:
    runtimes.execute(thread, "warm = True", timeout=30, **options)  # start the worker outside the timing
    samples = []
    for number in range(count):
        started = time.perf_counter()
        result = runtimes.execute(thread, code.replace("N", str(number)), timeout=30, **options)
        samples.append(time.perf_counter() - started)
        assert result["ok"], result["error"]
    return samples


def time_loop(blocks: int, workdir: Path, policy: dict | None = None) -> tuple[list[float], float]:
    """(per-block overhead samples, total seconds spent in the model's stream)."""
    from llmtools import codeact
    from llmtools.config import resolve_model
    from llmtools.runtime.manager import RuntimeManager
    from llmtools.services import in_process_stream

    replies = [f"Step {n}.\n<helpers>\nvalue_{n} = {n} * 2\nprint(value_{n})\n</helpers>"
               for n in range(blocks)] + ["Done."]
    script = workdir / f"bench-replies-{time.monotonic_ns()}.jsonl"
    script.write_text("".join(json.dumps(reply) + "\n" for reply in replies))
    spec = resolve_model(f"script:{script}")
    in_model = 0.0

    def timed_stream(spec, request):
        nonlocal in_model
        stream = in_process_stream(spec, request)
        while True:
            started = time.perf_counter()
            try:
                event = next(stream)
            except StopIteration:
                in_model += time.perf_counter() - started
                return
            in_model += time.perf_counter() - started
            yield event

    from llmtools.runtime.sandbox import ConfinedRuntimes

    with RuntimeManager(snapshot_dir=workdir / "snapshots") as manager:
        runtimes = ConfinedRuntimes(manager, policy) if policy is not None else manager
        doc, _, _ = codeact.fetch_helpers_doc(runtimes, "bench", 30)
        loop = codeact.CodeActLoop(spec, [{"role": "user", "content": "bench"}], runtimes,
                                   codeact.Settings(thread_id="bench", max_steps=blocks + 1),
                                   helpers_doc=doc, stream_factory=timed_stream)
        samples = []
        mark, model_mark = time.perf_counter(), in_model
        for event in loop.run():
            if isinstance(event, codeact.BlockFinished):
                now = time.perf_counter()
                samples.append((now - mark) - (in_model - model_mark))
                mark, model_mark = now, in_model
        assert loop.stop_reason == "answered" and loop.blocks_run == blocks
    return samples, in_model


def time_starts(policy: dict, count: int, workdir: Path) -> list[float]:
    """A fresh thread's first block: the worker's start (under bwrap or not) and one block."""
    from llmtools.runtime.manager import RuntimeManager

    samples = []
    with RuntimeManager(snapshot_dir=workdir / "starts") as runtimes:
        for number in range(count):
            started = time.perf_counter()
            result = runtimes.execute(f"start-{number}", "x = 1", timeout=30, sandbox=policy)
            samples.append(time.perf_counter() - started)
            assert result["ok"], result["error"]
            runtimes.reset(f"start-{number}")
    return samples


def sandbox_rows(options, home: Path) -> None:
    """The same measurements with the sandbox off and on, side by side."""
    from llmtools.config import resolve_model
    from llmtools.runtime import sandbox
    from llmtools.runtime.manager import RuntimeManager
    from llmtools.runtime.results import helper_context

    modes = ["off"]
    problem = sandbox.bwrap_problem(sandbox.find_bwrap())
    if problem is None and not options.no_sandbox:
        modes.append("workspace")
    policies = {mode: sandbox.policy(mode, bwrap=sandbox.find_bwrap(), cwd=str(home)) for mode in modes}
    context = helper_context(resolve_model("echo"), temperature=None, max_tokens=None, thinking=None,
                             log=True, cwd=str(home))
    rows: dict[str, dict[str, str]] = {}
    for mode, policy in policies.items():
        rows.setdefault(f"runtime start ({options.starts} fresh threads)", {})[mode] = summary(
            time_starts(policy, options.starts, home))
        with RuntimeManager(snapshot_dir=home / f"rows-{mode}") as runtimes:
            rows.setdefault("runtime round trip", {})[mode] = summary(
                time_executes(runtimes, "small", "x = N\nx + 1", options.blocks, sandbox=policy))
            calls = max(10, options.blocks // 10)
            rows.setdefault(f"helper model call ({calls}, echo)", {})[mode] = summary(
                time_executes(runtimes, "calls", "llm_call('N', 'repeat')", calls, sandbox=policy,
                              context=context))
        samples, _ = time_loop(options.blocks, home, policy)
        rows.setdefault("loop per block, excluding model", {})[mode] = summary(samples)
    print("\nthe sandbox's cost, side by side" + ("" if len(modes) > 1 else f" (workspace: {problem})"))
    print(f"  {'':34}" + "".join(f"{mode:<36}" for mode in modes))
    for label, cells in rows.items():
        print(f"  {label:34}" + "".join(f"{cells[mode]:<36}" for mode in modes))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--blocks", type=int, default=200)
    parser.add_argument("--daemon", action="store_true", help="also measure through the daemon")
    parser.add_argument("--starts", type=int, default=20, help="fresh threads started per mode")
    parser.add_argument("--no-sandbox", action="store_true", help="skip the workspace column")
    options = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-exec-") as home:
        os.environ["LLMTOOLS_HOME"] = home
        os.environ["LLMTOOLS_NO_DAEMON"] = "1"
        from llmtools.runtime.manager import RuntimeManager

        print(f"llm-exec overhead per block ({options.blocks} blocks, Python {sys.version.split()[0]})")
        with RuntimeManager(snapshot_dir=Path(home) / "snapshots") as runtimes:
            small = time_executes(runtimes, "small", "x = N\nx + 1", options.blocks)
            print(f"  runtime round trip, in-process   {summary(small)}")
            long_block = "\n".join(f"v{i} = N + {i}" for i in range(20))
            per_statement = [s / 20 for s in time_executes(runtimes, "long", long_block, options.blocks)]
            print(f"  per statement (20 a block)       {summary(per_statement)}")
        samples, in_model = time_loop(options.blocks, Path(home))
        print(f"  loop per block, excluding model  {summary(samples)}"
              f"   (model: {in_model / (options.blocks + 1) * 1000:.2f} ms a call)")
        sandbox_rows(options, Path(home))
        if options.daemon:
            del os.environ["LLMTOOLS_NO_DAEMON"]
            from llmtools.daemon.client import DaemonClient, connect_runtimes

            runtimes = connect_runtimes()
            if runtimes is None:
                print("  through the daemon               (daemon unavailable)")
            else:
                try:
                    through = time_executes(runtimes, "daemon", "x = N\nx + 1", options.blocks)
                    print(f"  runtime round trip, via daemon   {summary(through)}")
                finally:
                    DaemonClient().stop()


if __name__ == "__main__":
    main()
