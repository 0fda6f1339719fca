"""llm-compare: a predicate over two messages, for `if` and Makefiles."""

from __future__ import annotations

import base64
import json
import subprocess

import pytest

from llmtools.compare import NoVerdict, parse_verdict
from llmtools.providers.script import requests_path
from tests.conftest import command_path
from tests.helpers import run_command

PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQ"
                       "AAAABJRU5ErkJggg==")


def script(tmp_path, *replies) -> tuple[str, object]:
    path = tmp_path / "replies.jsonl"
    path.write_text("".join(json.dumps(reply) + "\n" for reply in replies))
    return f"script:{path}", path


def sent(path) -> list[dict]:
    return [json.loads(line) for line in requests_path(path).read_text().splitlines()]


def run_compare(args, input=None):
    from llmtools.cli.compare import command

    return run_command(command, args, input, prog_name="llm-compare")


def verdict(same: bool, reason: str) -> str:
    return json.dumps({"same": same, "reason": reason})


def test_the_exit_status_is_the_verdict_in_a_real_shell_if(tmp_path):
    """End to end: the installed command, as a process, inside sh's `if`."""
    model, path = script(tmp_path, verdict(True, "both say four"), verdict(False, "five is not four"),
                         "I would rather not say.", {"error": "the provider refused"})
    (tmp_path / "a.txt").write_text("Two plus two is four.\n")
    shell = f"""
for other in "2+2=4" "2+2=5" "2+2=?" "2+2"; do
    if "{command_path('llm-compare')}" -m "{model}" a.txt "$other"; then echo "same"; else echo "differs $?"; fi
done
"""
    completed = subprocess.run(["sh", "-c", shell], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert completed.stdout.splitlines() == [
        "true # both say four", "same",
        "false # five is not four", "differs 1",
        "differs 76", "differs 76"]
    assert "neither true nor false" in completed.stderr and "the provider refused" in completed.stderr
    first = sent(path)[0]
    assert first["messages"][1]["content"].startswith('<first source="a.txt">\nTwo plus two is four.\n')
    assert first["schema"]["required"] == ["same", "reason"]


def test_without_arguments_the_last_two_messages_of_the_stack_are_compared(tmp_path):
    model, path = script(tmp_path, "true # same capital")
    stack = [{"role": "user", "content": "ignored: not among the last two"},
             {"role": "user", "content": "Paris is the capital of France."},
             {"role": "assistant", "content": "France's capital: Paris."}]
    result = run_compare(["-m", model, "--criteria", "the same capital city"],
                         "".join(json.dumps(message) + "\n" for message in stack))
    assert (result.status, result.stdout) == (0, "true # same capital\n")
    [call] = sent(path)
    text = json.dumps(call["messages"])
    assert "ignored" not in text and "Paris is the capital" in text and "France's capital" in text
    assert "the same capital city" in call["messages"][-1]["content"]


def test_one_argument_is_compared_with_the_stacks_last_message(tmp_path):
    model, path = script(tmp_path, verdict(False, "different numbers"), verdict(True, "same"))
    result = run_compare(["-m", model, "-S", "42"], "forty-one")
    assert result.status == 1
    assert result.stack()[-1] == {"role": "assistant", "content": "false # different numbers",
                                  "meta": {"tool": "llm-compare"}}
    messages = sent(path)[0]["messages"]
    assert messages[1]["content"] == "<first>\nforty-one\n</first>"
    assert messages[2]["content"] == "<second>\n42\n</second>"


def test_images_are_sent_as_images(tmp_path):
    model, path = script(tmp_path, verdict(True, "the same pixel"))
    (tmp_path / "a.png").write_bytes(PNG)
    (tmp_path / "b.png").write_bytes(PNG)
    result = run_compare(["-m", model, str(tmp_path / "a.png"), str(tmp_path / "b.png")])
    assert result.status == 0, result.stderr
    first = sent(path)[0]["messages"][1]["content"]
    assert [part["type"] for part in first] == ["text", "image", "text"]


def test_a_model_that_cannot_see_images_is_a_data_error(tmp_path):
    (tmp_path / "a.png").write_bytes(PNG)
    result = run_compare(["-m", "local:smollm2", str(tmp_path / "a.png"), "a red dot"])
    assert result.status == 65 and "cannot read images" in result.stderr


@pytest.mark.parametrize("args, stdin", [([], "only one"), (["a", "b", "c"], None), ([], None)])
def test_fewer_or_more_than_two_things_is_a_usage_error(tmp_path, args, stdin):
    model, _ = script(tmp_path)
    result = run_compare(["-m", model, *args], stdin)
    assert result.status == 2 and "two" in result.stderr


@pytest.mark.parametrize("reply, same, reason", [
    ('{"same": false, "reason": "no"}', False, "no"),
    ("```json\n{\"same\": true, \"reason\": \"yes\"}\n```", True, "yes"),
    ('{"same": "true", "reason": "a string"}', True, "a string"),
    ("false # one says five", False, "one says five"),
    ("**True** - same meaning", True, "same meaning"),
])
def test_verdicts_are_read_in_json_and_in_compare_prompt_form(reply, same, reason):
    found = parse_verdict(reply)
    assert (found.same, found.reason) == (same, reason)


def test_a_reply_that_is_neither_is_no_verdict():
    with pytest.raises(NoVerdict, match="neither true nor false"):
        parse_verdict("It depends on what you mean.")
