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
- through the warm daemon: `llm-fetch` of a page served by a loopback http.server (the
  warm browser's own time included), and `llm-exec --eval` of a name in a live thread

Part 2, the breakdown of each hot path: interpreter start (bare Python), imports (from
`python -X importtime`, by top-level package; a package's figure includes the standard
library modules it pulls in first), and the rest (config, the exchange, the log write,
the daemon round trip, rendering). The log write is also shown as logged minus unlogged.

Every command runs this checkout's code: the console scripts of the venv may point at
another checkout (a .pth), so each row's environment puts PYTHONPATH=<this checkout>
first, and the daemon it starts runs the same code. `--compare-root DIR` runs every
llmtools row a second time with another checkout's code (PYTHONPATH=DIR, e.g. a
`git worktree` of an older commit), interleaved with ours, each with its own daemon.
Bytecode is cached as users have it (PYTHONDONTWRITEBYTECODE is dropped).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import http.server
import os
import statistics
import subprocess
import sys
import tempfile
import threading
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
FETCH = command("llm-fetch")
EXEC = command("llm-exec")


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


def base_env(home: str, root: Path = REPO) -> dict:
    """A fresh state directory, and `root`'s code first on the path (the venv's console
    scripts would otherwise import whatever checkout its .pth names)."""
    env = {**os.environ, "LLMTOOLS_HOME": home, "PYTHONPATH": str(root)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    for name in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "ANTHROPIC_BASE_URL", "OPENAI_BASE_URL"):
        env.pop(name, None)
    return env


# --- part 1: side by side ----------------------------------------------------------------------

Row = tuple[str, list[str], dict, bool]  # (label, argv, env, run through the shell)
TARGETS = {"llm --help": "target <= 5x", "llm -m echo hi (logged)": "target <= 90 ms",
           f"{STAGES}-stage echo pipeline": "target <= 800 ms",
           "loopback Anthropic via warm daemon": "target <= 100 ms",
           "  local overhead beyond the model's own time": "target <= 100 ms"}
PAGE = ("<!doctype html><html><head><title>A bench page</title></head><body><article><h1>A page</h1>"
        + "<p>A paragraph of the page, long enough to be kept as part of its body text.</p>" * 20
        + "</article></body></html>").encode()
EXEC_THREAD_REPLIES = "<helpers>\nx = 42\n</helpers>\n%\nDone.\n"


def variants(other_root: Path | None) -> list[tuple[str, Path]]:
    """(label suffix, checkout) for each code base measured: ours, and the one compared with."""
    return [("", REPO)] + ([(f" [{other_root.name}]", other_root)] if other_root else [])


def plain_rows(checkouts: list[tuple[str, Path]]) -> list[Row]:
    cases = [
        ("llm --help", [LLM, "--help"], False),
        ("llm -m echo -n hi", [LLM, "-m", "echo", "-n", "hi"], False),
        ("llm -m echo hi (logged)", [LLM, "-m", "echo", "hi"], False),
        (f"{STAGES}-stage echo pipeline", [pipeline(STAGES)], True),
    ]
    bare = {**base_env(tempfile.mkdtemp(prefix="llmtools-bench-")), "LLMTOOLS_NO_DAEMON": "1"}
    rows: list[Row] = [("python -c pass", [PYTHON, "-c", "pass"], bare, False)]
    for suffix, root in checkouts:
        env = {**base_env(tempfile.mkdtemp(prefix="llmtools-bench-"), root), "LLMTOOLS_NO_DAEMON": "1"}
        rows += [(label + suffix, argv, env, shell) for label, argv, shell in cases]
    return rows


def measure(rows: list[Row], runs: int) -> dict[str, list[float]]:
    """Each row once to warm caches, then `runs` rounds with the rows interleaved."""
    for _, argv, env, shell in rows:
        wall(argv, env, shell=shell)
    times: dict[str, list[float]] = {label: [] for label, *_ in rows}
    for _ in range(runs):
        for label, argv, env, shell in rows:
            times[label].append(wall(argv, env, shell=shell))
    return times


class _PageHandler(http.server.BaseHTTPRequestHandler):
    disable_nagle_algorithm = True

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, *args) -> None:
        pass


@contextlib.contextmanager
def page_server():
    """A page on 127.0.0.1 for llm-fetch, served from a thread of this process."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _PageHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/page.html"
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def warm_daemons(checkouts: list[tuple[str, Path]], anthropic_url: str, page_url: str, model: Path):
    """Rows through a warm daemon, one daemon per checkout, each warmed by one call of each
    row (SDK imported and its pool open, model loaded, browser up) and holding a live
    llm-exec thread for --eval."""
    rows: list[Row] = []
    envs: list[dict] = []
    try:
        for suffix, root in checkouts:
            home = tempfile.mkdtemp(prefix="llmtools-bench-")
            env = {**base_env(home, root), "ANTHROPIC_API_KEY": "sk-bench", "ANTHROPIC_BASE_URL": anthropic_url}
            envs.append(env)
            subprocess.run([LLM, "daemon", "start"], env=env, check=True, capture_output=True)
            replies = Path(home) / "replies.txt"
            replies.write_text(EXEC_THREAD_REPLIES)
            wall([EXEC, "-q", "-m", f"script:{replies}", "--thread", "bench", "set x"], env)
            rows += [
                ("loopback Anthropic via warm daemon" + suffix, [LLM, "-m", "claude-sonnet-4-6", "-n", "hi"], env,
                 False),
                ("local SmolLM2, 1 token via warm daemon" + suffix,
                 [LLM, "-m", str(model), "-n", "--max-tokens", "1", "--temperature", "0", "Say hi."], env, False),
                ("llm-fetch loopback page via warm daemon" + suffix, [FETCH, "-o", "text", page_url], env, False),
                ("llm-exec --eval via warm daemon" + suffix, [EXEC, "--thread", "bench", "--eval", "x"], env, False),
            ]
        yield rows
    finally:
        for env in envs:
            subprocess.run([LLM, "daemon", "stop"], env=env, capture_output=True)


def local_model_own_time(model: Path, runs: int) -> list[float]:
    """One token from a warm `Llama` in this process: the local model's own time."""
    from llama_cpp import Llama

    llama = Llama(model_path=str(model), n_ctx=2048, verbose=False)
    own = []
    for _ in range(runs + 1):
        started = time.perf_counter()
        for _chunk in llama.create_chat_completion(messages=[{"role": "user", "content": "Say hi."}],
                                                   max_tokens=1, temperature=0, stream=True):
            pass
        own.append(time.perf_counter() - started)
    return own[1:]


# --- part 2: where the time goes ---------------------------------------------------------------

MODULES = {LLM: "llmtools.cli.llm", FETCH: "llmtools.cli.fetch", EXEC: "llmtools.cli.exec"}


def import_breakdown(argv: list[str], env: dict) -> dict[str, float]:
    """Milliseconds of imports by top-level package, from the median of three importtime runs."""
    samples: list[dict[str, float]] = []
    for _ in range(3):
        # From the state directory: `python -m` puts its working directory first on the path,
        # which would shadow the checkout PYTHONPATH names.
        done = subprocess.run([PYTHON, "-X", "importtime", *argv], env=env, capture_output=True, check=False,
                              cwd=env["LLMTOOLS_HOME"])
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


def print_breakdown(times: dict[str, list[float]], rows: list[Row]) -> None:
    """Interpreter | imports by package | the rest, for each row (the compared checkout's
    too); a daemon row's rest includes the daemon's work and the model's own time."""
    floor = statistics.median(times["python -c pass"]) * 1000
    for label, argv, env, shell in sorted(rows, key=lambda found: found[0]):
        if shell or argv[0] not in MODULES:
            continue
        total = statistics.median(times[label]) * 1000
        imports = import_breakdown(["-m", MODULES[argv[0]], *argv[1:]], env)
        rest = total - floor - sum(imports.values())
        shown = " ".join(f"{group}={value:.1f}" for group, value in imports.items())
        print(f"  {label:<56} {total:6.1f} = python {floor:5.1f} | {shown} | rest {rest:6.1f}")


def print_round_trips(env: dict, anthropic_url: str, model: Path, runs: int) -> None:
    """One model call through our warm daemon, timed in this process: connecting, the
    request (which carries the code check), the daemon's dispatch and the events back."""
    from llmtools.daemon.client import DaemonClient
    from llmtools.daemon.remote import chat_through
    from llmtools.providers.base import ModelSpec, Request

    client = DaemonClient(Path(env["LLMTOOLS_HOME"]) / "run")
    specs = {"loopback Anthropic": ModelSpec(name="claude-sonnet-4-6", provider="anthropic",
                                             model_id="claude-sonnet-4-6", api_key="sk-bench",
                                             base_url=anthropic_url),
             "local SmolLM2, 1 token": ModelSpec(name=str(model), provider="local", model_id=str(model))}
    shown = []
    for name, spec in specs.items():
        found = []
        for _ in range(runs + 1):
            request = Request(messages=[{"role": "user", "content": "Say hi."}], max_tokens=1, temperature=0)
            started = time.perf_counter()
            for _event in chat_through(client, spec, request):
                pass
            found.append(time.perf_counter() - started)
        shown.append(f"{name} {statistics.median(found[1:]) * 1000:.1f}")
    print(f"  one call's daemon round trip, timed in-process (ms): {', '.join(shown)}")


def row(label: str, found: list[float], baseline: float) -> str:
    median = statistics.median(found)
    target = next((text for name, text in TARGETS.items() if label == name or label.startswith(f"{name} [")), "")
    return (f"{label:<60} {median * 1000:8.1f}ms {min(found) * 1000:8.1f}ms "
            f"{median / baseline:7.1f}x  {target}")


def daemon_rows(checkouts: list[tuple[str, Path]], runs: int, bare: list[float]) -> dict[str, list[float]]:
    """The warm-daemon rows measured, and the local model's own time and overhead added;
    the import breakdown of ours is printed while the daemons are still warm."""
    from llmtools import localmodels
    from tests.fakes.anthropic_server import AnthropicFakeServer

    model = localmodels.pull("smollm2", progress=True).path
    with AnthropicFakeServer() as server, page_server() as page_url, \
            warm_daemons(checkouts, server.base_url, page_url, model) as rows:
        times = measure(rows, runs)
        print("\nwhere the time goes through the warm daemon (ms): interpreter | imports | the rest")
        print_breakdown({**times, "python -c pass": bare}, rows)
        print_round_trips(rows[0][2], server.base_url, model, runs)
    own = local_model_own_time(model, runs)
    for suffix, _ in checkouts:
        through = times[f"local SmolLM2, 1 token via warm daemon{suffix}"]
        times[f"  its own time on a warm Llama in-process{suffix}"] = own
        times[f"  local overhead beyond the model's own time{suffix}"] = [
            statistics.median(through) - statistics.median(own)]
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--skip-daemon", action="store_true", help="only the rows without a daemon")
    parser.add_argument("--compare-root", metavar="DIR")
    options = parser.parse_args()
    checkouts = variants(Path(options.compare_root).resolve() if options.compare_root else None)
    rows = plain_rows(checkouts)
    times = measure(rows, options.runs)
    baseline = statistics.median(times["python -c pass"])
    if not options.skip_daemon:
        times.update(daemon_rows(checkouts, options.runs, times["python -c pass"]))
    print(f"\n{'what':<60} {'median':>10} {'best':>10} {'x python':>8}")
    for label, found in sorted(times.items(), key=lambda item: _order(item[0], checkouts)):
        print(row(label, found, baseline))
    print("\nwhere the time goes without a daemon (ms): interpreter | imports by package | the rest")
    print_breakdown(times, rows)
    logged = statistics.median(times["llm -m echo hi (logged)"]) * 1000
    unlogged = statistics.median(times["llm -m echo -n hi"]) * 1000
    print(f"  the log write (logged - unlogged): {logged - unlogged:.1f} ms")


def _order(label: str, checkouts: list[tuple[str, Path]]) -> tuple[int, int]:
    """Ours and the compared checkout's figure for one row next to each other."""
    for suffix, _ in checkouts:
        if suffix and label.endswith(suffix):
            base = label[: -len(suffix)]
            return (ROW_ORDER.index(base) if base in ROW_ORDER else 99, 1)
    return (ROW_ORDER.index(label) if label in ROW_ORDER else 99, 0)


ROW_ORDER = ["python -c pass", "llm --help", "llm -m echo -n hi", "llm -m echo hi (logged)",
             f"{STAGES}-stage echo pipeline", "loopback Anthropic via warm daemon",
             "local SmolLM2, 1 token via warm daemon", "  its own time on a warm Llama in-process",
             "  local overhead beyond the model's own time", "llm-fetch loopback page via warm daemon",
             "llm-exec --eval via warm daemon"]


if __name__ == "__main__":
    main()
