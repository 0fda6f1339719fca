#!/usr/bin/env python3
"""Benchmarks for the content commands: page fetches (warm vs cold browser) and OCR.

    .venv/bin/python scripts/bench_fetch.py [--fetches 20] [--ocr-pages 6] [--skip-ocr] [--skip-fetch]

Fetch: the same article page from a server on 127.0.0.1, N times,
  - warm: one Browser launched beforehand and reused for every fetch, as the daemon
    holds it (the launch is reported separately, since the daemon pays it once);
  - cold: a browser launched and closed for every fetch, as a command without the
    daemon does;
  - http: plain HTTP (--no-browser), for reference;
and the same as a user runs it: N `llm-fetch URL` processes, through the daemon's warm
browser, and with LLMTOOLS_NO_DAEMON=1 (each process launches its own).
OCR: an N-page scanned PDF through llm-pdf's OCR path,
  - tesseract free to use every core on one page at a time, then
  - one tesseract thread per process with one page per core (what llm-pdf does).
Prints figures only; nothing here passes or fails.
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

from llmtools.content.browser import Browser  # noqa: E402
from llmtools.content.fetch import fetch_each, fetch_message  # noqa: E402
from tests.pages import LocalSite  # noqa: E402
from tests.pdfs import SCAN_LINES, scanned_page, write_pdf  # noqa: E402


def bench_fetch(count: int) -> None:
    site = LocalSite(pdf=b"").start()
    url = site.url("/article")
    try:
        started = time.perf_counter()
        warm = Browser()
        warm.start()
        launch_s = time.perf_counter() - started
        try:
            started = time.perf_counter()
            results = list(fetch_each([url] * count, browser=warm))
            warm_s = time.perf_counter() - started
        finally:
            warm.close()
        assert all(result.error is None for result in results), results

        started = time.perf_counter()
        for _ in range(count):
            fetch_message(url)  # launches, renders, closes
        cold_s = time.perf_counter() - started

        started = time.perf_counter()
        results = list(fetch_each([url] * count, use_browser=False))
        http_s = time.perf_counter() - started
        assert all(result.error is None for result in results), results
    finally:
        site.stop()

    print(f"fetch: {count} fetches of {url}")
    print(f"  warm browser (one launch of {launch_s:.2f} s beforehand, reused): "
          f"{warm_s:6.2f} s  {count / warm_s:6.2f} pages/s  {warm_s / count * 1000:6.0f} ms/page")
    print(f"  cold browser (launched and closed per fetch):        "
          f"{cold_s:6.2f} s  {count / cold_s:6.2f} pages/s  {cold_s / count * 1000:6.0f} ms/page")
    print(f"  plain HTTP (--no-browser):                           "
          f"{http_s:6.2f} s  {count / http_s:6.2f} pages/s  {http_s / count * 1000:6.0f} ms/page")
    print(f"  warm is {cold_s / warm_s:.1f}x faster than cold (target: at least 5x)")


def bench_fetch_commands(count: int) -> None:
    bin_dir = Path(sys.executable).parent
    llm_fetch = str(bin_dir / "llm-fetch") if (bin_dir / "llm-fetch").exists() else str(REPO / "bin" / "llm-fetch")
    llm = str(bin_dir / "llm") if (bin_dir / "llm").exists() else str(REPO / "bin" / "llm")
    site = LocalSite(pdf=b"").start()
    url = site.url("/article")
    env = {**os.environ, "LLMTOOLS_HOME": tempfile.mkdtemp(prefix="llmtools-bench-")}
    try:
        def run_all(environment: dict) -> float:
            started = time.perf_counter()
            for _ in range(count):
                subprocess.run([llm_fetch, url], env=environment, check=True, capture_output=True)
            return time.perf_counter() - started

        started = time.perf_counter()
        subprocess.run([llm_fetch, url], env=env, check=True, capture_output=True)  # starts the daemon
        first_s = time.perf_counter() - started
        warm_s = run_all(env)
        subprocess.run([llm, "daemon", "stop"], env=env, check=True, capture_output=True)
        cold_s = run_all({**env, "LLMTOOLS_NO_DAEMON": "1"})
    finally:
        site.stop()
    print(f"llm-fetch processes: {count} runs of `llm-fetch {url}`")
    print(f"  through the daemon's warm browser (first run, starting it: {first_s:.2f} s): "
          f"{warm_s:6.2f} s  {warm_s / count * 1000:6.0f} ms/run")
    print(f"  LLMTOOLS_NO_DAEMON=1 (a browser launched per process):            "
          f"{cold_s:6.2f} s  {cold_s / count * 1000:6.0f} ms/run")
    print(f"  the daemon is {cold_s / warm_s:.1f}x faster (target: at least 5x)")


def bench_ocr(pages: int) -> None:
    from llmtools.content import pdf

    data = write_pdf([scanned_page(SCAN_LINES) for _ in range(pages)])
    cores = os.cpu_count() or 1
    saved = os.environ.get("OMP_THREAD_LIMIT")
    print(f"ocr: a {pages}-page scanned PDF at {pdf.OCR_DPI} dpi, {cores} cores")
    try:
        for label, threads, workers in (
            (f"one page at a time, tesseract on {cores} threads", cores, 1),
            (f"{cores} pages at a time, 1 tesseract thread each", 1, cores),
        ):
            os.environ["OMP_THREAD_LIMIT"] = str(threads)
            started = time.perf_counter()
            result = pdf.extract_pdf(data, ocr="auto", workers=workers)
            elapsed = time.perf_counter() - started
            assert result.ocr_pages == list(range(1, pages + 1))
            print(f"  {label:48s} {elapsed:6.2f} s  {pages / elapsed:5.2f} pages/s")
    finally:
        if saved is None:
            os.environ.pop("OMP_THREAD_LIMIT", None)
        else:
            os.environ["OMP_THREAD_LIMIT"] = saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fetches", type=int, default=20)
    parser.add_argument("--ocr-pages", type=int, default=6)
    parser.add_argument("--skip-fetch", action="store_true")
    parser.add_argument("--skip-ocr", action="store_true")
    args = parser.parse_args()
    if not args.skip_fetch:
        bench_fetch(args.fetches)
        bench_fetch_commands(args.fetches)
    if not args.skip_ocr:
        bench_ocr(args.ocr_pages)


if __name__ == "__main__":
    main()
