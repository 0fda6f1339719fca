"""A stage's reader sees the end of its output as soon as the last byte is written, not
after the interpreter's teardown: in a pipeline the next stage starts that much sooner."""

from __future__ import annotations

import os
import select
import subprocess
import sys

PROBE = """
import atexit, os, sys
atexit.register(os.read, int(sys.argv[1]), 1)  # the teardown waits until the test lets it go
sys.argv = ["llm", "-m", "echo", "-n", "hi"]
from llmtools.cli.llm import main
main()
"""


def read_to_end(stream, timeout: float) -> bytes:
    data = b""
    while True:
        readable, _, _ = select.select([stream], [], [], timeout)
        assert readable, f"no end of output within {timeout}s (got {data!r})"
        chunk = os.read(stream.fileno(), 65536)
        if not chunk:
            return data
        data += chunk


def test_the_reader_sees_the_end_of_the_answer_before_the_process_tears_down(llmtools_home):
    release_read, release_write = os.pipe()
    process = subprocess.Popen([sys.executable, "-c", PROBE, str(release_read)], stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, pass_fds=(release_read,))
    os.close(release_read)
    try:
        assert read_to_end(process.stdout, 30) == b'{"role": "user", "content": "hi"}\n'
        assert process.poll() is None  # still in its teardown, held by the test
    finally:
        os.write(release_write, b"x")
        os.close(release_write)
        process.wait(timeout=60)
    assert process.returncode == 0, process.stderr.read()
