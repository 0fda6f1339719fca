#!/usr/bin/env python3
"""Peak memory and time of each command on hostile inputs (tests/bombs.py), side by side.

    scripts/bench_bombs.py [--compare-root OTHER_CHECKOUT]

Rows: a 100 MB message through `llm -m echo` (logged and not, as text and as one stack
line), the PDF bombs through `llm-pdf`, a gzip bomb, HTML nested 100,000 deep and a page
that never finishes through `llm-fetch` (plain HTTP). Each figure is the command's own
peak RSS from wait4(2), under a 3 GB address-space limit; with --compare-root the same row
from another checkout (say, main before these fixes) is printed beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests import bombs  # noqa: E402
from tests.test_bombs import _Site  # noqa: E402  (the loopback site of the bomb tests)

BIN = Path(sys.executable).parent


def measure(root: Path, name: str, args: list[str], stdin: Path | None, home: Path, timeout: float = 120):
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))

    env = {**os.environ, "PYTHONPATH": str(root), "LLMTOOLS_HOME": str(home), "LLMTOOLS_NO_DAEMON": "1"}
    with open(stdin or os.devnull, "rb") as source, tempfile.TemporaryFile() as sink, \
            tempfile.TemporaryFile() as errors:
        started = time.monotonic()
        process = subprocess.Popen([str(BIN / name), *args], stdin=source, stdout=sink, stderr=errors,
                                   env=env, preexec_fn=limit)
        timer = threading.Timer(timeout, process.kill)
        timer.start()
        _, status, usage = os.wait4(process.pid, 0)
        timer.cancel()
        took = time.monotonic() - started
        errors.seek(0)
        last = (errors.read().decode(errors="replace").strip().splitlines() or [""])[-1]
    return os.waitstatus_to_exitcode(status), usage.ru_maxrss / 1024, took, last


def inputs(work: Path) -> dict[str, Path]:
    files = {"100 MB text": work / "big.txt", "100 MB stack line": work / "big.jsonl",
             "PDF 1 GB inflate": work / "inflate.pdf", "PDF 20k pages": work / "many.pdf",
             "PDF 200-inch page": work / "huge.pdf"}
    line = "abcdefghij" * 10 + "\n"
    text = line * (100 * (1 << 20) // len(line))
    files["100 MB text"].write_text(text)
    files["100 MB stack line"].write_text(json.dumps({"role": "user", "content": text}) + "\n")
    files["PDF 1 GB inflate"].write_bytes(bombs.inflating_pdf(1024))
    files["PDF 20k pages"].write_bytes(bombs.many_pages_pdf())
    files["PDF 200-inch page"].write_bytes(bombs.huge_page_pdf())
    return files


def rows(files: dict[str, Path], site: _Site) -> list[tuple[str, str, list[str], Path | None]]:
    return [
        ("100 MB text, logged", "llm", ["-m", "echo"], files["100 MB text"]),
        ("100 MB text, --no-log", "llm", ["-m", "echo", "--no-log"], files["100 MB text"]),
        ("100 MB stack line, --no-log", "llm", ["-m", "echo", "--no-log"], files["100 MB stack line"]),
        ("PDF, 1 GB inflated stream", "llm-pdf", ["-q", "-o", "text", str(files["PDF 1 GB inflate"])], None),
        ("PDF, 20,000 pages", "llm-pdf", ["-q", "-o", "text", str(files["PDF 20k pages"])], None),
        ("PDF, 200-inch page (OCR)", "llm-pdf", ["-q", "-o", "text", str(files["PDF 200-inch page"])], None),
        ("gzip bomb, 2 GB decoded", "llm-fetch", ["--no-browser", site.url("/gzip-bomb")], None),
        ("HTML nested 100,000 deep", "llm-fetch", ["--no-browser", "-o", "text", site.url("/deep")], None),
        ("page never finishing, 5 s", "llm-fetch", ["--no-browser", "--timeout", "5", site.url("/never")], None),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--compare-root", type=Path, help="another checkout to measure beside this one")
    options = parser.parse_args()
    roots = [REPO] + ([options.compare_root.resolve()] if options.compare_root else [])
    site = _Site()
    with tempfile.TemporaryDirectory(prefix="bench-bombs-") as scratch:
        work = Path(scratch)
        files = inputs(work)
        print(f"{'input':30} " + "  ".join(f"{root.name[:28]:>36}" for root in roots))
        for label, name, args, stdin in rows(files, site):
            cells = []
            for index, root in enumerate(roots):
                home = work / f"home-{index}-{label.split()[0]}"
                status, peak, took, _ = measure(root, name, args, stdin, home)
                cells.append(f"exit {status:>3}  {peak:7.0f} MB  {took:6.1f} s")
            print(f"{label:30} " + "  ".join(f"{cell:>36}" for cell in cells), flush=True)
    site.release.set()
    site.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
