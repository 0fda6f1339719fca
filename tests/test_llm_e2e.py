"""`llm` as real processes in pipelines: what a shell user sees."""

from __future__ import annotations

import json
import subprocess
import sys

from llmtools.logs import open_log
from tests.conftest import command_path
from tests.helpers import run_process

HEAVY_MODULES = ("anthropic", "openai", "httpx", "playwright", "faiss", "llama_cpp", "tiktoken",
                 "pytesseract", "numpy")


def test_pipeline_of_three_processes_carries_the_thread():
    llm = command_path("llm")
    pipeline = f"{llm} -m echo -S a | {llm} -m echo -S b | {llm} -m echo c"
    completed = subprocess.run(pipeline, shell=True, capture_output=True, text=True, timeout=60)
    assert completed.returncode == 0, completed.stderr
    turns = [json.loads(line) for line in completed.stdout.splitlines()]
    assert [turn["role"] for turn in turns] == ["user", "assistant", "user", "assistant", "user"]
    assert turns[-1] == {"role": "user", "content": "c"}
    rows = open_log().recent(None)
    assert len(rows) == 3 and len({row["conversation_id"] for row in rows}) == 1


def test_reader_closing_early_is_quiet():
    # 5000 lines of stack through echo: far more than a pipe buffer, so the writer meets EPIPE.
    big = "".join(json.dumps({"role": "user", "content": f"line {i}"}) + "\n" for i in range(5000))
    llm = command_path("llm")
    completed = subprocess.run(f"{llm} -m echo -S 'end' | head -1", shell=True, input=big,
                               capture_output=True, text=True, timeout=60,
                               executable="/bin/bash")
    assert completed.returncode == 0
    assert json.loads(completed.stdout) == {"role": "user", "content": "line 0"}
    assert completed.stderr == "", completed.stderr
    # The exchange is still logged, marked as cut short by the reader.
    [row] = open_log().recent(1)
    assert row["prompt"] == "end" and row["status"] in ("ok", "partial")


def test_broken_pipe_exit_status_is_141_under_pipefail():
    # Alternating roles so echo answers with one line per turn: many writes, and the
    # ones after `head` has gone meet EPIPE.
    turns = "".join(json.dumps({"role": ("user", "assistant")[i % 2], "content": "x" * 100}) + "\n"
                    for i in range(4000))
    llm = command_path("llm")
    completed = subprocess.run(f"set -o pipefail; {llm} -m echo 'q' | head -1", shell=True,
                               input=turns, capture_output=True, text=True, timeout=60,
                               executable="/bin/bash")
    assert completed.returncode == 141
    assert completed.stderr == "", completed.stderr
    [row] = open_log().recent(1)
    assert row["status"] == "partial"


def test_twenty_concurrent_processes_all_log_their_rows():
    llm = command_path("llm")
    processes = [subprocess.Popen([llm, "-m", "echo", f"message {i}"], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for i in range(20)]
    outputs = [process.communicate(timeout=120) for process in processes]
    assert [process.returncode for process in processes] == [0] * 20
    assert all(stderr == "" for _, stderr in outputs), [e for _, e in outputs if e]
    rows = open_log().recent(None)
    assert sorted(row["prompt"] for row in rows) == sorted(f"message {i}" for i in range(20))
    assert {row["status"] for row in rows} == {"ok"}


def test_help_version_and_echo_import_no_sdk():
    for args in (["--help"], ["--version"], ["prompt", "--help"], ["-m", "echo", "hi"]):
        probe = (f"import sys; sys.argv = ['llm', *{args!r}]\n"
                 "from llmtools.cli.llm import main\n"
                 "try:\n    main()\nexcept SystemExit:\n    pass\n"
                 f"heavy = [m for m in {HEAVY_MODULES!r} if m in sys.modules]\n"
                 "print('HEAVY', heavy, file=sys.stderr)")
        completed = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                                   timeout=60)
        assert "HEAVY []" in completed.stderr, (args, completed.stderr)


def test_errors_from_a_real_process_are_one_line():
    result = run_process("llm", ["-m", "echo", "q"], input='{"role": "user", "content": "a"}\n{oops\n')
    assert result.status == 65
    assert result.stderr.strip().count("\n") == 0 and result.stderr.startswith("llm: error: stdin line 2")
