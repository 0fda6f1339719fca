"""The message stack format: detection, validation, merging for providers."""

from __future__ import annotations

import base64
import json

import pytest

from llmtools import stack
from llmtools.errors import ExitStatus, InputError
from llmtools.inputs import read_messages
from llmtools.providers.base import prepare_turns

PNG_1x1 = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")


def test_plain_text_becomes_one_user_message():
    assert read_messages(b"hello\nworld\n") == [{"role": "user", "content": "hello\nworld\n"}]


def test_empty_input_is_no_messages():
    assert read_messages(b"") == []
    assert read_messages(b"\n  \n") == []


def test_stack_lines_are_read_as_messages_and_blank_lines_skipped():
    data = b'{"role": "system", "content": "be brief"}\n\n{"role": "user", "content": "hi", "meta": {"source": "x"}}\n'
    assert read_messages(data) == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "hi", "meta": {"source": "x"}},
    ]


def test_json_that_is_not_a_message_is_plain_text():
    data = b'{"name": "x", "value": 1}\n{"name": "y"}\n'
    assert read_messages(data) == [{"role": "user", "content": data.decode()}]


def test_malformed_line_part_way_names_the_line():
    data = b'{"role": "user", "content": "a"}\n{"role": "user", "content": "b"}\n{"role": "user", "content": \n'
    with pytest.raises(InputError) as caught:
        read_messages(data)
    assert "line 3" in str(caught.value)
    assert caught.value.status == ExitStatus.DATA_ERROR == 65


@pytest.mark.parametrize("line, problem", [
    ('{"role": "robot", "content": "x"}', "role"),
    ('{"role": "user"}', "content"),
    ('{"role": "user", "content": 5}', "content"),
    ('{"role": "user", "content": [{"type": "video"}]}', "video"),
    ('{"role": "user", "content": [{"type": "image", "media_type": "image/png", "data": "@@"}]}', "base64"),
    ('{"role": "user", "content": "x", "meta": []}', "meta"),
    ('[1, 2]', "object"),
])
def test_invalid_messages_after_the_first_line_are_rejected(line, problem):
    data = ('{"role": "user", "content": "ok"}\n' + line + "\n").encode()
    with pytest.raises(InputError, match=problem) as caught:
        read_messages(data)
    assert "line 2" in str(caught.value)


def test_non_utf8_text_is_a_data_error():
    with pytest.raises(InputError, match="not UTF-8.*0xff at offset 3"):
        read_messages(b"abc\xff\xfe")


def test_image_bytes_become_an_image_part():
    [msg] = read_messages(PNG_1x1)
    assert msg["role"] == "user"
    [part] = msg["content"]
    assert part["type"] == "image" and part["media_type"] == "image/png"
    assert base64.b64decode(part["data"]) == PNG_1x1


def test_line_separators_inside_strings_do_not_split_messages():
    msg = {"role": "user", "content": "one\u2028two\x85three"}
    data = (stack.dumps(msg) + "\n").encode()
    assert read_messages(data) == [msg]


def test_written_stack_reads_back_identically(tmp_path):
    messages = [stack.message("user", "héllo ✓", source="a.txt"),
                {"role": "assistant", "content": [{"type": "text", "text": "x"}]}]
    path = tmp_path / "s.jsonl"
    with open(path, "w", encoding="utf-8") as handle:
        stack.write_stack(messages, handle)
    assert all(json.loads(line) for line in path.read_text().splitlines())
    assert read_messages(path.read_bytes(), str(path)) == messages


def test_prepare_turns_merges_same_role_neighbours_and_collects_system():
    messages = [
        {"role": "system", "content": "rule one"},
        {"role": "user", "content": "a\n"},
        {"role": "user", "content": "b"},
        {"role": "assistant", "content": "c"},
        {"role": "system", "content": "rule two"},
        {"role": "user", "content": [{"type": "text", "text": "d"}]},
        {"role": "user", "content": "e"},
    ]
    system, turns = prepare_turns(messages)
    assert system == "rule one\n\nrule two"
    assert turns == [
        {"role": "user", "content": "a\n\nb"},
        {"role": "assistant", "content": "c"},
        {"role": "user", "content": [{"type": "text", "text": "d"}, {"type": "text", "text": "e"}]},
    ]


def test_prepare_turns_names_the_source_of_a_message():
    _, turns = prepare_turns([stack.message("user", "print(1)", source="a.py")])
    assert turns[0]["content"] == '<document source="a.py">\nprint(1)\n</document>'
