#!/usr/bin/env python3
"""llm-map's two speed targets, measured side by side.

    PYTHONPATH=. .venv/bin/python scripts/bench_map.py [--calls 200] [--delay 0.2] [--jobs 8 16]

1. Concurrency: `--strategy mapreduce` over 200 chunks (200 messages of ~180 tokens of real
   text, one chunk each) against a loopback OpenAI-compatible server
   (tests/fakes/openai_server.py, through the official SDK) that answers each call after
   200 ms. The issue's ideal is calls x delay / jobs; target: within 10% of it. A mapreduce
   also makes one reduce call after the last map answer, which no schedule can overlap, so
   the floor of the whole command is shown too: ceil(calls / jobs) rounds + one call.
   Rows: the map step alone (ModelCaller.call_many, what -j bounds); the whole `llm-map`
   process through the warm daemon (what a user has after the first command), with its
   input there at once and as the second stage of a pipeline whose first stage takes a
   second (timed from the first stage's last byte: what the pipeline waits for); and the
   whole process with the daemon off (LLMTOOLS_NO_DAEMON=1), which imports the SDK itself.
2. Chunk + rank throughput of the offline default (BM25) on 10 MB of text; target 5 MB/s.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def serve(delay: float) -> None:
    """Run the loopback OpenAI server, answering each call after `delay` seconds, until stdin
    closes. In a process of its own, so it does not share the client's interpreter lock."""
    from tests.fakes.openai_server import OpenAIFakeServer

    class NoPromptCache:
        """The fake's cache simulation compares each prompt with every one seen before, under
        a lock: thousands of calls in, that is milliseconds a call of the fake's own CPU, on
        the cores the client and daemon run on. A real API spends none of ours."""

        def cached_tokens(self, body: dict) -> int:
            return 0

    class Delayed(OpenAIFakeServer):
        def __init__(self) -> None:
            super().__init__()
            self.prompt_cache = NoPromptCache()

        def respond(self, request, behaviour, exchange):
            time.sleep(delay)  # the model "thinking": what the bench measures around
            super().respond(request, behaviour, exchange)

    server = Delayed().start()
    print(server.base_url, flush=True)
    sys.stdin.read()
    server.stop()


class DelayedServer:
    def __init__(self, delay: float) -> None:
        self.process = subprocess.Popen([sys.executable, __file__, "--serve", str(delay)], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
        self.base_url = self.process.stdout.readline().strip()

    def stop(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=30)


def configure(home: Path, base_url: str) -> None:
    config = home / "config"
    config.mkdir(parents=True, exist_ok=True)
    (config / "config.toml").write_text(f'[models.fake]\nbase_url = "{base_url}"\nmodel = "fake"\n'
                                        'price_input = 0.1\nprice_output = 0.4\n')


def map_step(stack: bytes, jobs: int) -> float:
    """The map calls alone, with the prompts llm-map sends for this content, in this process."""
    from llmtools.config import resolve_model
    from llmtools.mapping import prompts
    from llmtools.mapping.calls import ModelCaller
    from llmtools.mapping.chunking import chunk_messages

    chunks = chunk_messages([json.loads(line) for line in stack.decode().splitlines()])
    calls = [prompts.map_messages(chunk, len(chunks), "summarise") for chunk in chunks]
    with ModelCaller(resolve_model("fake"), jobs=jobs, log=True) as caller:
        caller.call([{"role": "user", "content": "warm the connection pool"}])
        started = time.perf_counter()
        results = caller.call_many(calls)
        wall = time.perf_counter() - started
    assert all(result.ok for result in results)
    return wall


def content_stack(calls: int) -> bytes:
    """`calls` messages of real text (180-token pieces of the README), each one chunk, so the
    map makes exactly `calls` calls."""
    from llmtools.mapping import tokens
    from llmtools.mapping.chunking import DEFAULT_CHUNK_TOKENS, chunk_messages

    ids = tokens.encoding().encode_ordinary((REPO / "README.md").read_text())
    size = 180
    messages = []
    for number in range(calls):
        start = number * size % (len(ids) - size)
        text = tokens.encoding().decode(ids[start:start + size])
        messages.append({"role": "user", "content": text, "meta": {"source": f"part-{number}.txt"}})
    assert len(chunk_messages(messages, DEFAULT_CHUNK_TOKENS)) == calls, "a message makes two chunks"
    return "".join(json.dumps(message) + "\n" for message in messages).encode()


def whole_command(stack: bytes, jobs: int, env: dict, upstream_s: float = 0.0) -> float:
    """Seconds from the input's last byte to the command's exit. With `upstream_s`, the input
    comes that long after the command started, as from a pipeline's first stage."""
    command = [sys.executable, "-c", "from llmtools.cli.map import main; main()", "-m", "fake",
               "--strategy", "mapreduce", "-j", str(jobs), "summarise"]
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               env=env)
    if upstream_s:
        time.sleep(upstream_s)  # the first stage at work (a PDF read, a page fetched)
    started = time.perf_counter()
    out, err = process.communicate(stack, timeout=600)
    wall = time.perf_counter() - started
    if process.returncode != 0 or not out.strip():
        raise SystemExit(f"llm-map failed ({process.returncode}): {err.decode()[-2000:]}")
    return wall


def concurrency(args) -> None:
    server = DelayedServer(args.delay)
    home = Path(tempfile.mkdtemp(prefix="bench-map-"))
    os.environ.update(LLMTOOLS_HOME=str(home))
    os.environ.pop("LLMTOOLS_NO_DAEMON", None)
    configure(home, server.base_url)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    no_daemon = {**env, "LLMTOOLS_NO_DAEMON": "1"}
    stack = content_stack(args.calls)
    llm = [sys.executable, "-c", "from llmtools.cli.llm import main; main()"]
    subprocess.run([*llm, "daemon", "start"], env=env, check=True, capture_output=True)
    try:
        whole_command(stack, 8, env)  # the daemon's SDK client and the tokenizer cache, once
        for jobs in args.jobs:
            ideal = args.calls * args.delay / jobs
            floor = math.ceil(args.calls / jobs) * args.delay + args.delay
            print(f"\n-j {jobs}: ideal {ideal:.2f} s ({args.calls} x {args.delay:g} s / {jobs}); floor "
                  f"{floor:.2f} s (whole rounds + the reduce call)")
            print(f"  {'what':<46}{'s':>7}{'over ideal':>12}{'over floor':>12}")
            rows = [("map step (ModelCaller.call_many)", map_step(stack, jobs), False),
                    ("llm-map, warm daemon, input there at once", whole_command(stack, jobs, env), True),
                    ("llm-map, warm daemon, 2nd stage of a pipeline",
                     whole_command(stack, jobs, env, upstream_s=1.0), True),
                    ("llm-map, no daemon, input there at once", whole_command(stack, jobs, no_daemon), True)]
            for label, seconds, whole in rows:
                over_floor = f"{seconds / floor - 1:>12.1%}" if whole else f"{'':>12}"
                print(f"  {label:<46}{seconds:>7.2f}{seconds / ideal - 1:>12.1%}{over_floor}")
    finally:
        subprocess.run([*llm, "daemon", "stop"], env=env, capture_output=True)
        server.stop()


def throughput(args) -> None:
    from llmtools.mapping import tokens
    from llmtools.mapping.chunking import chunk_messages
    from llmtools.mapping.lexical import BM25Ranker, term_table

    tokens.encoding(), tokens.byte_lengths(), term_table()  # loaded once per process, not per MB
    paragraphs = [(REPO / "README.md").read_text(), *(page.read_text() for page in sorted((REPO / "man").glob("*")))]
    seed = "\n\n".join(paragraphs)
    text = (seed * (args.megabytes * 1_000_000 // len(seed) + 1))[: args.megabytes * 1_000_000]
    size = len(text.encode())
    started = time.perf_counter()
    chunks = chunk_messages([{"role": "user", "content": text}])
    chunked = time.perf_counter()
    BM25Ranker().rank(chunks, "How does llm-map choose between top and mapreduce?")
    ranked = time.perf_counter()
    total = ranked - started
    print(f"{size / 1e6:.1f} MB, {len(chunks)} chunks: chunk {chunked - started:.2f} s, rank "
          f"{ranked - chunked:.2f} s, total {total:.2f} s = {size / 1e6 / total:.1f} MB/s (target 5 MB/s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--delay", type=float, default=0.2)
    parser.add_argument("--jobs", type=int, nargs="+", default=[8, 16])
    parser.add_argument("--megabytes", type=int, default=10)
    parser.add_argument("--skip-concurrency", action="store_true")
    parser.add_argument("--serve", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve is not None:
        return serve(args.serve)
    if not args.skip_concurrency:
        concurrency(args)
    throughput(args)


if __name__ == "__main__":
    main()
