"""Property tests of the stack reader and writer (llmtools-stack(5)), with hypothesis."""

from __future__ import annotations

import io
import json

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from llmtools import detect, inputs, stack
from llmtools.errors import InputError

# Any Unicode text: hypothesis leaves out lone surrogates (not characters), and includes
# U+2028, U+2029, NUL, \r, \x85 and the rest of what str.splitlines() would split on.
TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=200)
LINE_BREAKERS = st.sampled_from(["\u2028", "\u2029", "\x85", "\x0b", "\x0c", "\x1c", "\r", "\r\n"])
TRICKY_TEXT = st.lists(st.one_of(TEXT, LINE_BREAKERS), max_size=8).map("".join)

JSON_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), TRICKY_TEXT,
                         st.floats(allow_nan=False, allow_infinity=False))
JSON_VALUES = st.recursive(JSON_SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(TRICKY_TEXT, inner, max_size=4)), max_leaves=12)

TEXT_PART = st.builds(lambda text: {"type": "text", "text": text}, TRICKY_TEXT)
IMAGE_PART = st.builds(lambda data: stack.image_message(data, "image/png")["content"][0],
                       st.binary(max_size=64))
CONTENT = st.one_of(TRICKY_TEXT, st.lists(st.one_of(TEXT_PART, IMAGE_PART), max_size=4))


@st.composite
def messages(draw) -> dict:
    message = {"role": draw(st.sampled_from(stack.ROLES)), "content": draw(CONTENT)}
    if draw(st.booleans()):
        message["meta"] = draw(st.dictionaries(TRICKY_TEXT, JSON_VALUES, max_size=4))
    return message


STACKS = st.lists(messages(), min_size=1, max_size=6)


def written(stack_messages: list[dict]) -> str:
    out = io.StringIO()
    stack.write_stack(stack_messages, out)
    return out.getvalue()


@given(STACKS)
def test_what_is_written_reads_back_the_same(stack_messages):
    text = written(stack_messages)
    assert text.count("\n") == len(stack_messages)  # one line per message, whatever the text
    assert stack.parse_stack(text) == stack_messages


@given(STACKS)
@settings(suppress_health_check=[HealthCheck.too_slow])
def test_stdin_bytes_are_detected_as_the_same_stack(stack_messages):
    data = written(stack_messages).encode("utf-8")
    assert detect.looks_like_stack(data.decode("utf-8"))
    assert inputs.read_messages(data) == stack_messages


@given(STACKS, st.integers(min_value=0, max_value=5), TEXT)
def test_a_lone_surrogate_is_refused_with_its_line(stack_messages, position, text):
    position = min(position, len(stack_messages))
    bad = {"role": "user", "content": text[:3] + "\ud800" + text[3:]}
    lines = [stack.dumps(message) for message in stack_messages]
    lines.insert(position, json.dumps(bad))  # ensure_ascii: the surrogate as a \\ud800 escape
    try:
        stack.parse_stack("\n".join(lines) + "\n")
    except InputError as error:
        assert f"line {position + 1}:" in str(error) and "surrogate" in str(error)
    else:
        raise AssertionError("a lone surrogate was accepted")


@given(STACKS, st.integers(min_value=0, max_value=5), TEXT)
def test_every_error_names_its_line(stack_messages, position, garbage):
    assume(garbage.strip())
    assume("\n" not in garbage and "\r" not in garbage)
    try:
        stack.validate(json.loads(garbage), "probe")
    except (ValueError, InputError, RecursionError):
        pass
    else:
        assume(False)  # the garbage happens to be a valid message
    position = min(position, len(stack_messages))
    lines = [stack.dumps(message) for message in stack_messages]
    lines.insert(position, garbage)
    try:
        stack.parse_stack("\n".join(lines) + "\n", source="in.jsonl")
    except InputError as error:
        assert str(error).startswith(f"in.jsonl line {position + 1}: ")
    else:
        raise AssertionError(f"accepted {garbage!r}")


@given(st.integers(min_value=1, max_value=200_000))
def test_nesting_at_any_depth_is_data_or_an_error_with_a_line(depth):
    line = '{"role": "user", "content": "x", "meta": {"a": ' + "[" * depth + "]" * depth + "}}"
    try:
        [message] = stack.parse_stack(line)
    except InputError as error:
        assert "line 1: not valid JSON (nested too deeply)" in str(error)
    else:
        assert message["content"] == "x"
