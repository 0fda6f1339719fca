"""Fuzz target: the stack reader (llmtools.stack, llmtools.detect) with atheris.

    python tests/fuzz/fuzz_stack.py -max_total_time=60 [corpus_dir]

Any bytes on stdin must end as messages or as an InputError (exit 65 with a line
number), never another exception; what is read must write back and read the same.
tests/test_fuzz.py runs this for a few seconds as part of the suite.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    from llmtools import detect, stack
    from llmtools.errors import InputError


def one_input(data: bytes) -> None:
    try:
        text = stack.decode_text(data, "fuzz")
    except InputError:
        return
    if not detect.looks_like_stack(text):
        return
    try:
        messages = stack.parse_stack(text, "fuzz")
    except InputError as error:
        assert " line " in str(error), str(error)
        return
    rewritten = "".join(stack.dumps(message) + "\n" for message in messages)
    rewritten.encode("utf-8")  # what was accepted can be written out (no lone surrogates)
    assert stack.parse_stack(rewritten, "again") == messages


SEEDS = [
    b'{"role": "user", "content": "hi"}\n',
    b'{"role": "assistant", "content": [{"type": "text", "text": "a\\u2028b"}], "meta": {"id": "x"}}\n',
    b'{"role": "user", "content": [{"type": "image", "media_type": "image/png", "data": "iVBORw=="}]}\n',
    b'{"role": "system", "content": "s"}\r\n{"role": "user", "content": "\\ud83d\\ude00"}\n',
]


def main() -> None:
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
