#!/usr/bin/env python3
"""llm-map's two speed targets, measured side by side.

    PYTHONPATH=. .venv/bin/python scripts/bench_map.py [--calls 200] [--delay 0.2] [--jobs 8 16]

1. Concurrency: the map step over 200 chunks against a loopback OpenAI-compatible server
   (tests/fakes/openai_server.py, through the official SDK) that answers each call after
   200 ms. Ideal wall time is calls x delay / jobs; target: within 10% of it. Shown for the
   map step alone (ModelCaller.call_many, what -j bounds) and for the whole `llm-map`
   process (start-up, chunking, the map, the final reduce call).
2. Chunk + rank throughput of the offline default (BM25) on 10 MB of text; target 5 MB/s.
"""

from __future__ import annotations

import argparse
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

    class Delayed(OpenAIFakeServer):
        def respond(self, request, behaviour, exchange):
            time.sleep(delay)  # the model "thinking": what the bench measures around
            super().respond(request, behaviour, exchange)

        def _track(self, connection):
            # The fake writes a stream in many small pieces; with Nagle's algorithm on, each
            # response waits ~40 ms for the client's delayed ACK, which a real API does not.
            import socket

            connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            super()._track(connection)

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


def map_step(calls: int, jobs: int) -> float:
    from llmtools.config import resolve_model
    from llmtools.mapping.calls import ModelCaller

    prompts = [[{"role": "user", "content": f"chunk {n}"}] for n in range(calls)]
    with ModelCaller(resolve_model("fake"), jobs=jobs, log=True) as caller:
        caller.call([{"role": "user", "content": "warm the connection pool"}])
        started = time.perf_counter()
        results = caller.call_many(prompts)
        wall = time.perf_counter() - started
    assert all(result.ok for result in results)
    return wall


def whole_command(calls: int, jobs: int, env: dict) -> float:
    # One message per chunk: exactly `calls` chunks, whatever the tokenizer does.
    stack = "".join(f'{{"role": "user", "content": "part {n} of the content"}}\n' for n in range(calls))
    command = [sys.executable, "-c", "from llmtools.cli.map import main; main()", "-m", "fake",
               "--strategy", "mapreduce", "-j", str(jobs), "summarise"]
    started = time.perf_counter()
    completed = subprocess.run(command, input=stack.encode(), capture_output=True, env=env, timeout=600)
    wall = time.perf_counter() - started
    if completed.returncode != 0:
        raise SystemExit(completed.stderr.decode())
    return wall


def concurrency(args) -> None:
    server = DelayedServer(args.delay)
    home = Path(tempfile.mkdtemp(prefix="bench-map-"))
    os.environ.update(LLMTOOLS_HOME=str(home), LLMTOOLS_NO_DAEMON="1")
    configure(home, server.base_url)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    print(f"{'jobs':>5}{'ideal s':>9}{'map step s':>12}{'over ideal':>12}{'llm-map s':>11}{'over ideal':>12}")
    try:
        for jobs in args.jobs:
            ideal = args.calls * args.delay / jobs
            step = map_step(args.calls, jobs)
            command = whole_command(args.calls, jobs, env)
            print(f"{jobs:>5}{ideal:>9.2f}{step:>12.2f}{(step / ideal - 1):>12.1%}{command:>11.2f}"
                  f"{(command / ideal - 1):>12.1%}")
    finally:
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
