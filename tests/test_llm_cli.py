"""`llm` through its real entry wrapper, with the deterministic echo model."""

from __future__ import annotations

import json

import pytest

from llmtools.logs import open_log
from tests.helpers import run_llm


def echoed(result) -> list[dict]:
    """The turns the echo model says it would have sent (one JSON object per line)."""
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def test_prompt_argument_is_sent_as_one_user_turn():
    result = run_llm(["-m", "echo", "hi"])
    assert result.status == 0, result.stderr
    assert echoed(result) == [{"role": "user", "content": "hi"}]
    assert result.stderr == ""


def test_prompt_words_are_joined():
    assert echoed(run_llm(["-m", "echo", "two", "words"])) == [{"role": "user", "content": "two words"}]


def test_stdin_text_comes_before_the_prompt_in_one_merged_turn():
    result = run_llm(["-m", "echo", "summarise"], input="text\n")
    assert echoed(result) == [{"role": "user", "content": "text\n\nsummarise"}]


def test_stack_output_then_stack_input_carries_the_thread():
    first = run_llm(["-m", "echo", "-S", "a"])
    assert [m["role"] for m in first.stack()] == ["user", "assistant"]
    second = run_llm(["-m", "echo", "-S", "b"], input=first.stdout)
    assert second.status == 0, second.stderr
    sent = second.stack()
    assert [m["role"] for m in sent] == ["user", "assistant", "user", "assistant"]
    assert sent[2] == {"role": "user", "content": "b"}
    # The echo of the second call shows the model received the 3-message thread.
    answer_lines = [json.loads(line) for line in sent[3]["content"].splitlines()]
    assert [turn["role"] for turn in answer_lines] == ["user", "assistant", "user"]
    # Both calls are one conversation in the log.
    rows = open_log().recent(None)
    assert len(rows) == 2 and rows[0]["conversation_id"] == rows[1]["conversation_id"]


def test_concatenated_stacks_are_one_stack(tmp_path):
    a = '{"role": "user", "content": "from a"}\n'
    b = '{"role": "assistant", "content": "from b"}\n'
    result = run_llm(["-m", "echo", "and now?"], input=a + b)
    assert echoed(result) == [
        {"role": "user", "content": "from a"},
        {"role": "assistant", "content": "from b"},
        {"role": "user", "content": "and now?"},
    ]


def test_system_option_replaces_a_leading_system_message():
    piped = '{"role": "system", "content": "old"}\n{"role": "user", "content": "q"}\n'
    result = run_llm(["-m", "echo", "-s", "new"], input=piped)
    assert echoed(result) == [{"system": "new"}, {"role": "user", "content": "q"}]


def test_context_option_adds_a_message_before_the_prompt():
    result = run_llm(["-m", "echo", "-t", "ctx", "question"])
    assert echoed(result) == [{"role": "user", "content": "ctx\n\nquestion"}]


def test_options_reach_the_provider():
    result = run_llm(["-m", "echo", "--temperature", "0.5", "--max-tokens", "7", "-z", "low", "q"])
    assert echoed(result)[0] == {"options": {"max_tokens": 7, "temperature": 0.5, "thinking": "low"}}


def test_paths_files_directories_and_globs_with_exclusions(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "core.py").write_text("CORE = 1\n")
    (tmp_path / "pkg" / "sub").mkdir()
    (tmp_path / "pkg" / "sub" / "deep.py").write_text("DEEP = 2\n")
    (tmp_path / "pkg" / "sub" / "__init__.py").write_text("")
    (tmp_path / "notes.md").write_text("# Notes\n")
    result = run_llm(["-m", "echo", "-S", "-p", "**/*.py", "!**/__init__.py", "-p", "notes.md", "what?"])
    assert result.status == 0, result.stderr
    sent = result.stack()[:-1]
    assert [m.get("meta", {}).get("source") for m in sent] == [
        "pkg/core.py", "pkg/sub/deep.py", "notes.md", None]
    assert sent[-1]["content"] == "what?"


def test_directory_path_skips_binary_files_with_a_warning(tmp_path):
    (tmp_path / "a.txt").write_text("alpha")
    (tmp_path / "blob.bin").write_bytes(b"\x00\x01\x02")
    result = run_llm(["-m", "echo", "-S", "-p", str(tmp_path), "q"])
    assert result.status == 0
    assert [m["content"] for m in result.stack()[:-1]] == ["alpha", "q"]
    assert "skipping binary file" in result.stderr and "blob.bin" in result.stderr


def test_continue_picks_up_the_last_conversation():
    run_llm(["-m", "echo", "first"])
    result = run_llm(["-m", "echo", "-c", "second"])
    assert [turn["role"] for turn in echoed(result)] == ["user", "assistant", "user"]
    rows = open_log().recent(None)
    assert rows[0]["conversation_id"] == rows[1]["conversation_id"]


def test_cid_continues_a_named_conversation_by_prefix():
    run_llm(["-m", "echo", "one"])
    conversation = open_log().recent(1)[0]["conversation_id"]
    run_llm(["-m", "echo", "unrelated"])
    result = run_llm(["-m", "echo", "--cid", conversation[:14], "two"])
    assert echoed(result)[0] == {"role": "user", "content": "one"}


def test_no_log_writes_no_row():
    run_llm(["-m", "echo", "-n", "secret"])
    assert open_log().count() == 0


def test_logs_command_shows_prompt_and_answer_and_json():
    run_llm(["-m", "echo", "remember me"])
    text = run_llm(["logs"])
    assert "> remember me" in text.stdout and "echo" in text.stdout
    rows = [json.loads(line) for line in run_llm(["logs", "--json", "-n", "1"]).stdout.splitlines()]
    assert rows[0]["prompt"] == "remember me" and rows[0]["status"] == "ok"
    assert rows[0]["messages"] == [{"role": "user", "content": "remember me"}]


def test_profile_goes_to_stderr_only():
    result = run_llm(["-m", "echo", "--profile", "hi"])
    assert echoed(result) == [{"role": "user", "content": "hi"}]
    assert "profile: model=echo" in result.stderr and "ttft=" in result.stderr and "cost=" in result.stderr


def test_output_jsonl_is_the_same_as_stack():
    assert run_llm(["-m", "echo", "-o", "jsonl", "x"]).stack()[0] == {"role": "user", "content": "x"}


# --- bad input: one line, documented status, no traceback ---------------------

def assert_one_line_error(result, status: int, *fragments: str):
    assert result.status == status, (result.status, result.stderr)
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("llm: error:")]
    assert len(error_lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in error_lines[0]
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_malformed_stack_names_the_line_and_exits_65():
    data = '{"role": "user", "content": "a"}\n{"role": "user", "content": "b"\n'
    assert_one_line_error(run_llm(["-m", "echo", "q"], input=data), 65, "line 2")


def test_non_utf8_stdin_exits_65():
    assert_one_line_error(run_llm(["-m", "echo", "q"], input=b"ok \xff\xfe"), 65, "not UTF-8")


def test_missing_path_exits_2():
    assert_one_line_error(run_llm(["-m", "echo", "-p", "no/such/file.txt", "q"]), 2, "no/such/file.txt")


def test_glob_matching_nothing_exits_2(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert_one_line_error(run_llm(["-m", "echo", "-p", "*.nothing", "q"]), 2, "no files match")


def test_unknown_model_exits_2():
    assert_one_line_error(run_llm(["-m", "no-such-model", "q"]), 2, "unknown model", "llm models")


@pytest.mark.parametrize("model, variable", [("claude-sonnet-4-5", "ANTHROPIC_API_KEY"),
                                             ("gpt-4.1", "OPENAI_API_KEY")])
def test_missing_provider_key_exits_2_naming_the_variable(model, variable):
    assert_one_line_error(run_llm(["-m", model, "q"]), 2, variable)


def test_nothing_to_ask_is_a_usage_error():
    assert_one_line_error(run_llm(["-m", "echo"]), 2, "nothing to ask")


def test_bad_thinking_value_is_a_usage_error():
    assert_one_line_error(run_llm(["-m", "echo", "-z", "lots", "q"]), 2, "-z")


def test_unknown_option_is_a_usage_error():
    result = run_llm(["--no-such-flag", "q"])
    assert result.status == 2 and "No such option" in result.stderr and "Traceback" not in result.stderr
