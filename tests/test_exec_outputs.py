"""Large outputs the model can page through (llmtools/runtime/outputs.py).

A statement's output over a few kilobytes is kept whole beside the thread's snapshot; the
model sees the head and the tail plus a handle, and `read_output`/`output` return any part.
"""

from __future__ import annotations

from tests.test_exec_cli import Script, block, run_exec

LINES = 80_000
WIDTH = 64  # every line the same width, newline included: 80,000 lines are 5.12 MB


def line(number: int) -> str:
    text = f"line {number:05d}: checksum {number * 7919 % 100_003:06d} "
    return text + "." * (WIDTH - 1 - len(text))


def test_a_5_mb_output_is_paged_to_a_line_in_its_middle_and_quoted_exactly(tmp_path):
    middle = LINES // 2
    page = middle * WIDTH // 4000 + 1
    script = Script(
        tmp_path,
        block("Printing the table.",
              f"for n in range({LINES}):\n    text = f'line {{n:05d}}: checksum {{n * 7919 % 100_003:06d}} '\n"
              f"    print(text + '.' * ({WIDTH} - 1 - len(text)))"),
        block("Paging to the middle.",
              f"found = [l for l in output('out1', page={page}).splitlines() if l.startswith('line {middle:05d}:')]\n"
              f"print(found[0])\nprint(read_output('out1', -{WIDTH}, {WIDTH}), end='')"),
        f"The middle line is: {line(middle)}")
    result = run_exec(["-m", script.model, "--thread", "big", "Print the table, then quote its middle line."])
    assert result.status == 0, result.stderr
    first = script.result_sent(1)
    assert first.startswith(f"<helpers_result>\n{line(0)}\n") and f"{line(LINES - 1)}\n" in first
    assert '"out1": 5,120,000 characters, 80,000 lines' in first
    assert len(first) < 8000 + 1000  # the model got the head, the tail and the handle, not 5 MB
    second = script.result_sent(2)
    assert second == f"<helpers_result>\n{line(middle)}\n{line(LINES - 1)}\n</helpers_result>"
    assert result.stdout.endswith(f"The middle line is: {line(middle)}\n")


def test_a_run_without_a_thread_leaves_no_kept_output_behind(tmp_path, llmtools_home):
    script = Script(tmp_path, block("Printing.", "print('x' * 100_000)"), "Done.")
    result = run_exec(["-m", script.model, "print a lot"])
    assert result.status == 0, result.stderr
    assert 'kept as "out1"' in script.result_sent(1)
    runtime_dir = llmtools_home / "data" / "runtime"
    assert not runtime_dir.exists() or list(runtime_dir.iterdir()) == []
