"""`llm --listen FIFO`: a long-running answerer fed through a real named pipe by real writers."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading

import pytest

from llmtools.listen import Framer
from llmtools.logs import open_log
from tests.conftest import command_path
from tests.fakes import CutMidStream
from tests.test_terminal import openai_on_loopback  # noqa: F401  (a fixture)

LIMIT_S = 60


class Listener:
    """`llm --listen FIFO ...` as a process; its stdout read line by line as it comes."""

    def __init__(self, fifo, *args: str) -> None:
        self.process = subprocess.Popen([command_path("llm"), "--listen", str(fifo), *args],
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: queue.Queue[str] = queue.Queue()
        self.stderr_lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, args=(self.process.stdout, self.lines), daemon=True).start()
        threading.Thread(target=self._pump, args=(self.process.stderr, self.stderr_lines), daemon=True).start()

    @staticmethod
    def _pump(stream, lines) -> None:
        for line in stream:
            lines.put(line)

    def next_stack(self) -> list[dict]:
        """The next answer's stack (-S: its lines, then an empty line)."""
        found = []
        while (line := self.lines.get(timeout=LIMIT_S)) != "\n":
            found.append(json.loads(line))
        return found

    def next_warning(self) -> str:
        return self.stderr_lines.get(timeout=LIMIT_S)

    def terminate(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=LIMIT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            said = "".join(self.stderr_lines.queue)
            raise AssertionError(f"the listener did not end on SIGTERM; its stderr: {said!r}") from None


def write_once(fifo, data: bytes) -> None:
    """A writer process: one open, one write(2), one close."""
    subprocess.run([sys.executable, "-c", "import os, sys\nfd = os.open(sys.argv[1], os.O_WRONLY)\n"
                    "os.write(fd, sys.argv[2].encode())\nos.close(fd)", str(fifo), data.decode()],
                   check=True, timeout=LIMIT_S)


def stack_bytes(*contents: str) -> bytes:
    return "".join(json.dumps({"role": "user", "content": c}) + "\n" for c in contents).encode() + b"\n"


@pytest.fixture
def fifo(tmp_path):
    path = tmp_path / "requests.fifo"
    os.mkfifo(path, 0o600)
    return path


def test_three_writers_are_answered_in_order_of_arrival_each_once(fifo):
    listener = Listener(fifo, "-m", "echo", "-S")
    try:
        for name in ("first", "second", "third"):
            write_once(fifo, stack_bytes(f"{name} context", f"{name} question"))
        answers = [listener.next_stack() for _ in range(3)]
        assert listener.terminate() == 143
    finally:
        listener.process.kill()
    assert [stack[-2]["content"] for stack in answers] == ["first question", "second question", "third question"]
    assert all(stack[-1]["role"] == "assistant" for stack in answers)
    assert listener.lines.empty()  # nothing answered twice
    assert len(open_log().recent(None)) == 3


def test_writers_at_once_never_interleave_within_pipe_buf(fifo):
    listener = Listener(fifo, "-m", "echo", "-S")
    try:
        writers = [subprocess.Popen([sys.executable, "-c", "import os, sys\nfd = os.open(sys.argv[1], os.O_WRONLY)\n"
                                     "os.write(fd, sys.argv[2].encode())\nos.close(fd)", str(fifo),
                                     stack_bytes(*[f"writer {n} line {i} " + "x" * 200 for i in range(15)]).decode()])
                   for n in range(5)]
        for writer in writers:
            writer.wait(timeout=LIMIT_S)
        answers = [listener.next_stack() for _ in range(5)]
    finally:
        listener.terminate()
    for answer in answers:
        writers_seen = {msg["content"].split()[1] for msg in answer if msg["role"] == "user"}
        assert len(writers_seen) == 1 and len(answer) == 16
    assert sorted(answer[0]["content"].split()[1] for answer in answers) == ["0", "1", "2", "3", "4"]


def test_a_writer_killed_mid_line_is_reported_not_answered(fifo):
    listener = Listener(fifo, "-m", "echo", "-S")
    try:
        dies_mid_line = ("import os, signal, sys\nfd = os.open(sys.argv[1], os.O_WRONLY)\n"
                         "os.write(fd, b'{\"role\": \"user\", \"content\": \"half a mess')\n"
                         "os.kill(os.getpid(), signal.SIGKILL)")
        killed = subprocess.run([sys.executable, "-c", dies_mid_line, str(fifo)], timeout=LIMIT_S)
        assert killed.returncode == -signal.SIGKILL
        assert "a writer left a partial line" in listener.next_warning()
        write_once(fifo, b"a plain question\n")
        [question, answer] = listener.next_stack()
        assert question["content"] == "a plain question" and answer["role"] == "assistant"
    finally:
        status = listener.terminate()
    assert status == 143
    assert [row["prompt"] for row in open_log().recent(None)] == ["a plain question"]


def test_sigterm_mid_answer_leaves_nothing_half_written(fifo, openai_on_loopback):  # noqa: F811
    openai_on_loopback.script(CutMidStream(text_before_cut="half of an answer", chunks=1, hold=True))
    listener = Listener(fifo, "-m", "gpt-4.1")
    try:
        write_once(fifo, b"a question\n")
        openai_on_loopback.wait_for_requests(1, timeout=LIMIT_S)
        openai_on_loopback.when_sent("half of an answer")
        status = listener.terminate()
        stdout = listener.process.stdout.read() if listener.lines.empty() else "something"
    finally:
        listener.process.kill()
        openai_on_loopback.released.set()
    assert status == 143 and stdout == ""
    [row] = open_log().recent(None)
    assert row["status"] == "interrupted"


def test_answers_go_to_the_out_fifo(fifo, tmp_path):
    out = tmp_path / "answers.fifo"
    os.mkfifo(out, 0o600)
    listener = Listener(fifo, "-m", "echo", "--out", str(out))
    try:
        write_once(fifo, b"to the other pipe\n")
        with open(out, encoding="utf-8") as answers:
            assert json.loads(answers.read()) == {"role": "user", "content": "to the other pipe"}
    finally:
        listener.terminate()


def test_framing_rules():
    reports: list[str] = []
    framer = Framer(reports.append, "fifo")
    lines = [b'{"role": "user", "content": "context"}', b"the question", b"alone",
             b'{"role": "user", "content": "a stack"}', b"", b'{"role": "user", "content": ', b"dropped", b""]
    found = [request for line in lines for request in framer.line(line)]
    assert [[m["content"] for m in request] for request in found] == [["context", "the question"], ["alone"],
                                                                       ["a stack"]]
    assert len(reports) == 1 and "fifo line 6: not valid JSON" in reports[0]


def test_listen_refuses_a_prompt_and_a_plain_file(tmp_path):
    plain = tmp_path / "plain.txt"
    plain.write_text("")
    from tests.helpers import run_llm

    assert run_llm(["--listen", str(plain)]).status == 2
    assert "not a named pipe" in run_llm(["--listen", str(plain)]).stderr
    assert run_llm(["--out", str(plain), "hi"]).status == 2


def test_listen_warns_of_a_cut_off_answer_and_honours_profile(fifo, tmp_path):
    # --listen answers as `llm` does: the same cut-off warning, and --profile's line per answer.
    replies = tmp_path / "replies.jsonl"
    replies.write_text(json.dumps({"text": "The answer is cut", "stop_reason": "max_tokens"}) + "\n")
    listener = Listener(fifo, "-m", f"script:{replies}", "--max-tokens", "5", "--profile")
    try:
        write_once(fifo, b"a long question\n")
        assert listener.lines.get(timeout=LIMIT_S) == "The answer is cut\n"
        said = [listener.next_warning(), listener.next_warning()]
        assert listener.terminate() == 143
    finally:
        listener.process.kill()
    assert "answer stopped at the token limit (5); raise --max-tokens" in said[0]
    assert "profile: model=script:" in said[1]
