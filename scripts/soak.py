#!/usr/bin/env python3
"""Soak: many mixed commands at once while clients and the daemon are killed and stopped.

    scripts/soak.py [--commands 1000] [--parallel 20] [--seed N] [--home DIR]

Runs `--commands` commands, `--parallel` at a time, against a fresh LLMTOOLS_HOME and a
daemon: `llm -m echo`, `llm-exec` with a scripted model (one code block, then an answer),
`llm-fetch` of pages served on 127.0.0.1 (plain HTTP, and a share through the daemon's
browser). Meanwhile a chaos thread picks, every fraction of a second, one of: kill -9 of a
running client, kill -STOP/CONT of a client, kill -STOP/CONT of the daemon (sometimes for
longer than a client waits for it), kill -9 of the daemon.

At the end it counts answers printed (a command that exited 0 with its answer on stdout)
against answers logged (a row "ok" in logs.db holding that answer), rows left "running"
after a fresh start, and runs SQLite's integrity check. Targets: printed == logged, none
running, integrity "ok". Clients killed with -9 are counted apart: what they printed is cut.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


@dataclasses.dataclass
class Command:
    index: int
    kind: str  # "echo", "exec", "fetch", "fetch-browser"
    args: list[str]
    expected: str  # what stdout must contain for the answer to count as printed
    process: subprocess.Popen | None = None
    status: int | None = None
    stdout: str = ""
    stderr: str = ""
    killed: bool = False
    stopped: int = 0
    seconds: float = 0.0


class _Pages(BaseHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002
        pass

    def do_GET(self) -> None:  # noqa: N802
        number = self.path.rsplit("/", 1)[-1]
        body = (f"<!doctype html><html><head><title>Soak page {number}</title></head><body><main>"
                f"<h1>Soak page {number}</h1><p>This is page {number} of the soak, served locally.</p>"
                + "<p>Filler paragraph for the extractor to keep.</p>" * 20
                + "</main></body></html>").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except OSError:
            pass  # the client was killed: that is the point of the soak


def plan(count: int, rng: random.Random, work: Path, site: str) -> list[Command]:
    commands = []
    for index in range(count):
        marker = f"soak-{index}-{rng.randrange(10**6):06d}"
        roll = rng.random()
        if roll < 0.5:
            commands.append(Command(index, "echo", [str(BIN / "llm"), "-m", "echo", marker], marker))
        elif roll < 0.75:
            replies = work / f"replies-{index}.txt"
            replies.write_text(f"<helpers>\nprint(6 * 7)\n</helpers>\n%\nThe answer is 42 ({marker}).\n")
            commands.append(Command(index, "exec", [str(BIN / "llm-exec"), "-q", "-m", f"script:{replies}",
                                                    f"task {marker}"], f"The answer is 42 ({marker})."))
        else:
            browser = rng.random() < 0.1
            args = [str(BIN / "llm-fetch"), "-o", "text", f"{site}/page/{index}"]
            commands.append(Command(index, "fetch-browser" if browser else "fetch",
                                    args + ([] if browser else ["--no-browser"]), f"Soak page {index}"))
    return commands


class Soak:
    def __init__(self, options: argparse.Namespace, home: Path) -> None:
        self.options = options
        self.home = home
        self.rng = random.Random(options.seed)
        self.running: dict[int, Command] = {}
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.chaos_log: collections.Counter = collections.Counter()
        self.env = {**os.environ, "LLMTOOLS_HOME": str(home), "PYTHONPATH": str(REPO),
                    "LLMTOOLS_RETRY_BASE_DELAY": "0.05"}
        self.env.pop("LLMTOOLS_NO_DAEMON", None)

    def run_one(self, command: Command) -> None:
        started = time.monotonic()
        process = subprocess.Popen(command.args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, env=self.env, text=True)
        command.process = process
        with self.lock:
            self.running[command.index] = command
        try:
            command.stdout, command.stderr = process.communicate(timeout=600)
        except subprocess.TimeoutExpired:
            process.kill()
            command.stdout, command.stderr = process.communicate()
            command.stderr += "\n[soak: killed after 600 s]"
        finally:
            with self.lock:
                self.running.pop(command.index, None)
        command.status = process.returncode
        command.seconds = time.monotonic() - started

    def daemon_pid(self) -> int | None:
        try:
            return json.loads((self.home / "run" / "daemon.pid").read_text())["pid"]
        except (OSError, ValueError, KeyError):
            return None

    def chaos(self) -> None:
        while not self.done.wait(self.rng.uniform(0.5, 2.0)):
            action = self.rng.choices(["kill-client", "stop-client", "stop-daemon", "kill-daemon"],
                                      weights=[4, 4, 2, 1])[0]
            if action.endswith("client"):
                with self.lock:
                    choices = list(self.running.values())
                if not choices:
                    continue
                victim = self.rng.choice(choices)
                pid = victim.process.pid if victim.process else None
                if pid is None:
                    continue
                if action == "kill-client":
                    victim.killed = True
                    self._signal(pid, signal.SIGKILL)
                else:
                    victim.stopped += 1
                    self._pause(pid, self.rng.uniform(0.2, 3.0))
            else:
                pid = self.daemon_pid()
                if pid is None:
                    continue
                if action == "kill-daemon":
                    self._signal(pid, signal.SIGKILL)
                else:
                    # Sometimes past the clients' 5 s ping, so they work without it.
                    self._pause(pid, self.rng.choice([0.5, 2.0, 7.0]))
            self.chaos_log[action] += 1

    def _pause(self, pid: int, seconds: float) -> None:
        if self._signal(pid, signal.SIGSTOP):
            threading.Timer(seconds, self._signal, (pid, signal.SIGCONT)).start()

    @staticmethod
    def _signal(pid: int, signum: int) -> bool:
        try:
            os.kill(pid, signum)
            return True
        except ProcessLookupError:
            return False


def logged_answers(home: Path) -> tuple[dict[str, int], list[str], str]:
    """(row count by status, responses of "ok" rows, integrity check) after a fresh start."""
    subprocess.run([str(BIN / "llm"), "logs", "-n", "1"], env={**os.environ, "LLMTOOLS_HOME": str(home),
                   "PYTHONPATH": str(REPO), "LLMTOOLS_NO_DAEMON": "1"}, capture_output=True, check=False)
    connection = sqlite3.connect(home / "data" / "logs.db")
    statuses = dict(connection.execute("SELECT status, count(*) FROM responses GROUP BY status").fetchall())
    responses = [row[0] for row in connection.execute("SELECT response FROM responses WHERE status = 'ok'")]
    integrity = connection.execute("PRAGMA integrity_check").fetchone()[0]
    connection.close()
    return statuses, responses, integrity


def report(commands: list[Command], soak: Soak, took: float) -> bool:
    statuses, responses, integrity = logged_answers(soak.home)
    logged_text = "\n".join(responses)
    by_kind: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    mismatches = []
    for command in commands:
        counts = by_kind[command.kind]
        counts["run"] += 1
        counts[f"exit {command.status}"] += 1
        if command.killed:
            counts["killed -9"] += 1
            continue
        printed = command.status == 0 and command.expected in command.stdout
        counts["printed"] += printed
        if command.kind in ("echo", "exec"):
            logged = command.expected in logged_text
            counts["logged"] += logged
            if printed != logged:
                mismatches.append((command.index, command.kind, command.status, command.stderr.strip()[-200:]))
    print(f"{len(commands)} commands, {soak.options.parallel} at a time, {took:.0f} s; chaos: "
          + ", ".join(f"{name} x{count}" for name, count in sorted(soak.chaos_log.items())))
    for kind, counts in sorted(by_kind.items()):
        print(f"  {kind:14} " + ", ".join(f"{key} {value}" for key, value in sorted(counts.items())))
    printed = sum(by_kind[kind]["printed"] for kind in ("echo", "exec"))
    logged = sum(by_kind[kind]["logged"] for kind in ("echo", "exec"))
    print(f"answers printed {printed}, logged {logged} (model-calling commands not killed)")
    print(f"log rows by status: {json.dumps(statuses, sort_keys=True)}; integrity_check: {integrity}")
    failures = collections.Counter(command.stderr.strip().splitlines()[-1][:90] for command in commands
                                   if command.status not in (0, None, -9) and command.stderr.strip())
    for line, count in failures.most_common(8):
        print(f"  x{count}: {line}")
    for mismatch in mismatches[:10]:
        print(f"  printed != logged: {mismatch}")
    return printed == logged and not statuses.get("running") and integrity == "ok"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--commands", type=int, default=1000)
    parser.add_argument("--parallel", type=int, default=20)
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--home", help="LLMTOOLS_HOME to use (default: a fresh temporary one)")
    options = parser.parse_args()
    home = Path(options.home or tempfile.mkdtemp(prefix="llmtools-soak-"))
    work = home / "work"
    work.mkdir(parents=True, exist_ok=True)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Pages)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    soak = Soak(options, home)
    commands = plan(options.commands, soak.rng, work, f"http://127.0.0.1:{server.server_address[1]}")
    chaos = threading.Thread(target=soak.chaos, daemon=True)
    started = time.monotonic()
    chaos.start()
    try:
        with ThreadPoolExecutor(max_workers=options.parallel) as pool:
            list(pool.map(soak.run_one, commands))
    finally:
        soak.done.set()
        chaos.join()
        time.sleep(7.5)  # let the last SIGCONT timers fire before stopping the daemon
        subprocess.run([str(BIN / "llm"), "daemon", "stop"], env=soak.env, capture_output=True, check=False)
        server.shutdown()
    ok = report(commands, soak, time.monotonic() - started)
    print(f"home: {home}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
