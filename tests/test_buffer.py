"""llm-buffer: real programs in a real pty, through pyte; assertions on the visible text."""

from __future__ import annotations

import json
import os
import sys
import textwrap

import pytest

from llmtools import buffer
from llmtools.errors import UsageError
from tests.helpers import run_process

CURSES_APP = textwrap.dedent("""
    import curses, sys

    def main(screen):
        curses.curs_set(0)
        screen.addstr(0, 0, "counting...")
        screen.refresh()
        for i in range(50):
            screen.addstr(1, 0, f"step {i:3d}")
            screen.refresh()
        # The final frame: the first row is overwritten, so only an emulator shows it right.
        screen.addstr(0, 0, "READY      ")
        screen.addstr(5, 10, "press k")
        screen.refresh()
        while True:
            key = screen.getch()
            if key == ord("k"):
                screen.addstr(6, 10, "got k")
            elif key == curses.KEY_F6:
                screen.addstr(7, 10, "got F6")
            elif key == ord("q"):
                return
            screen.refresh()

    curses.wrapper(main)
""")


@pytest.fixture
def curses_app(tmp_path):
    path = tmp_path / "app.py"
    path.write_text(CURSES_APP)
    return [sys.executable, str(path)]


def test_a_curses_program_gives_its_settled_frame_not_its_escape_codes(curses_app):
    captured = buffer.capture(curses_app, settle_s=0.3, max_duration_s=20)
    lines = captured.text.splitlines()
    assert lines[0] == "READY"
    assert lines[1] == "step  49"
    assert lines[5] == " " * 10 + "press k"
    assert "\x1b" not in captured.text
    assert captured.exit_status is None and not captured.timed_out  # we stopped it


def test_keys_are_typed_once_the_screen_has_settled(curses_app):
    captured = buffer.capture(curses_app, settle_s=0.3, max_duration_s=20, keys="k F6")
    lines = captured.text.splitlines()
    assert lines[6].strip() == "got k" and lines[7].strip() == "got F6"


def test_htop_shows_its_process_table(tmp_path):
    # -p: only this test's own process, so the row to look for is known.
    captured = buffer.capture(["htop", "-p", str(os.getpid())], settle_s=0.5, max_duration_s=20,
                              size=(120, 30))
    text = captured.text
    assert "PID" in text and "Command" in text and "F10Quit" in text.replace(" ", "")
    [row] = [line for line in text.splitlines() if line.strip().startswith(f"{os.getpid()} ")]
    assert "python" in row
    assert len(text.splitlines()) <= 30 and max(map(len, text.splitlines())) <= 120


def test_vim_on_a_file_shows_the_file(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("first line of notes\nsecond line\n")
    captured = buffer.capture(["vim", "-u", "NONE", "-N", "-n", "-i", "NONE", str(path)],
                              settle_s=0.5, max_duration_s=20)
    lines = captured.text.splitlines()
    assert lines[:2] == ["first line of notes", "second line"]
    assert lines[2].startswith("~")
    assert '"' + str(path) in captured.text or "notes.txt" in captured.text


def test_top_batch_lines_keeps_what_scrolled_off():
    captured = buffer.capture(["top", "-b", "-n", "1", "-w", "120"], lines=True, max_duration_s=20)
    lines = captured.text.splitlines()
    assert lines[0].startswith("top - ") and len(lines) > 24
    assert captured.exit_status == 0


def test_top_batch_as_a_frame_is_what_the_terminal_shows_last():
    captured = buffer.capture(["top", "-b", "-n", "1", "-w", "120"], size=(120, 24), max_duration_s=20)
    lines = captured.text.splitlines()
    assert 0 < len(lines) <= 24 and not lines[0].startswith("top - ")  # the head scrolled away


def test_a_program_that_ignores_sigterm_is_killed():
    command = ["sh", "-c", "trap '' TERM; echo ignoring TERM; while :; do sleep 1; done"]
    captured = buffer.capture(command, settle_s=0.2, max_duration_s=20)
    assert captured.text == "ignoring TERM\n"
    with pytest.raises(ProcessLookupError):
        os.kill(captured.pid, 0)


def test_a_program_that_never_settles_ends_at_max_duration():
    command = [sys.executable, "-c", "import itertools, time\nfor i in itertools.count():\n"
               "    print(f'\\r{i}', end='', flush=True); time.sleep(0.01)"]
    captured = buffer.capture(command, settle_s=2, max_duration_s=1)
    assert captured.timed_out and captured.text.strip().isdigit()


def test_a_program_that_exits_at_once_still_yields_its_output_and_status():
    captured = buffer.capture(["sh", "-c", "echo hello from sh; exit 3"], max_duration_s=20)
    assert captured.text == "hello from sh\n"
    assert captured.exit_status == 3
    assert captured.message()["meta"]["exit_status"] == 3


def test_size_and_keys_parse():
    assert buffer.parse_size("120x40") == (120, 40)
    with pytest.raises(UsageError):
        buffer.parse_size("40")
    assert buffer.parse_keys("Down Enter q C-c ^d") == "\x1b[B\rq\x03\x04"


def test_the_command_writes_a_stack_with_the_command_line_as_source():
    result = run_process("llm-buffer", ["--", "sh", "-c", "echo 'one two'; exit 4"], timeout=60)
    assert result.status == 0, result.stderr
    [message] = [json.loads(line) for line in result.stdout.splitlines()]
    assert message["role"] == "user" and message["content"] == "one two\n"
    assert message["meta"]["source"] == "sh -c 'echo '\"'\"'one two'\"'\"'; exit 4'"
    assert message["meta"]["exit_status"] == 4
    assert "exited with status 4" in result.stderr


def test_a_missing_program_is_a_usage_error():
    result = run_process("llm-buffer", ["--", "no-such-program-here"], timeout=60)
    assert result.status == 2 and "cannot run no-such-program-here" in result.stderr


def test_text_output_and_the_pipeline_into_llm(tmp_path):
    result = run_process("llm-buffer", ["-o", "text", "--", "printf", "a\\nb\\n"], timeout=60)
    assert result.stdout == "a\nb\n"
    env = {"PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]}
    import subprocess

    from tests.conftest import command_path

    completed = subprocess.run(f"{command_path('llm-buffer')} -- echo 4242 | {command_path('llm')} -m echo",
                               shell=True, capture_output=True, text=True, timeout=60, env={**os.environ, **env})
    assert completed.returncode == 0, completed.stderr
    assert "4242" in completed.stdout


def test_a_frame_on_a_terminal_is_shown_as_drawn_not_rendered_as_markdown():
    import pexpect

    from tests.conftest import command_path

    child = pexpect.spawn(command_path("llm-buffer"), ["--", "printf", "# not a heading\\n* not a bullet\\n"],
                          env={**os.environ, "TERM": "xterm-256color"}, encoding="utf-8", timeout=60)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert "# not a heading\r\n* not a bullet\r\n" in child.before
