"""Continuing conversations (-c, --cid, --retry), stop reasons and the token cap, `llm logs`."""

from __future__ import annotations

import json

import pytest

from llmtools.exchange import Exchange
from llmtools.logs import open_log
from llmtools.providers.base import Finished, ModelSpec, Request, TextDelta
from tests.fakes.fixtures import anthropic_server, openai_server  # noqa: F401  (fixtures)
from tests.fakes.llama_server import smollm2, smollm2_gguf  # noqa: F401  (fixtures)
from tests.fakes.loopback import Reply
from tests.fakes.openai_server import OpenAIFakeServer
from tests.helpers import run_llm, run_process


def echoed(result) -> list[dict]:
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def write_replies(path, *replies) -> str:
    path.write_text("".join(json.dumps(reply) + "\n" for reply in replies))
    return f"script:{path}"


def sent_to_script(path) -> list[dict]:
    from llmtools.providers.script import requests_path

    requests = requests_path(path)
    return [json.loads(line) for line in requests.read_text().splitlines()]


@pytest.fixture
def two_servers(write_config):
    """[models.near] and [models.far]: two loopback OpenAI-compatible servers; far is the default."""
    with OpenAIFakeServer() as near, OpenAIFakeServer() as far:
        write_config(f'default_model = "far"\n'
                     f'[models.near]\nbase_url = "{near.base_url}"\nmodel = "near-7b"\n'
                     f'[models.far]\nbase_url = "{far.base_url}"\nmodel = "far-70b"\n')
        yield near, far


def test_continue_keeps_the_conversations_model_not_the_default(two_servers):
    near, far = two_servers
    near.script(Reply(text="first answer"), Reply(text="second answer"))
    assert run_llm(["-m", "near", "first"]).status == 0
    follow = run_llm(["-c", "follow up"])
    assert follow.status == 0, follow.stderr
    assert follow.stdout.strip() == "second answer" and follow.stderr == ""
    assert len(near.requests) == 2 and far.requests == []
    assert [m["content"] for m in near.requests[1].body["messages"]] == [
        "first", "first answer", "follow up"]


def test_cid_with_m_switches_model_and_says_so(two_servers):
    near, far = two_servers
    near.script(Reply(text="from near"))
    far.script(Reply(text="from far"))
    run_llm(["-m", "near", "first"])
    cid = open_log().recent(1)[0]["conversation_id"]
    switched = run_llm(["--cid", cid[:6], "-m", "far", "again"])
    assert switched.status == 0, switched.stderr
    assert "was held with near; continuing with far" in switched.stderr
    assert [m["content"] for m in far.requests[0].body["messages"]] == ["first", "from near", "again"]


def test_continue_keeps_system_prompt_and_options():
    run_llm(["-m", "echo", "-s", "Be brief.", "--temperature", "0.3", "--max-tokens", "50", "hi"])
    again = run_llm(["-c", "more"])
    lines = echoed(again)
    assert lines[0] == {"options": {"max_tokens": 50, "temperature": 0.3}}
    assert lines[1] == {"system": "Be brief."}
    # A flag given now wins over the conversation's.
    assert echoed(run_llm(["-c", "--temperature", "1", "x"]))[0]["options"]["temperature"] == 1


def test_failed_exchange_is_not_part_of_the_thread_and_retry_resends_it(tmp_path):
    script = tmp_path / "replies.jsonl"
    model = write_replies(script, "hello", {"error": "the server fell over"}, "a joke", "again")
    assert run_llm(["-m", model, "hi"]).status == 0
    assert run_llm(["-c", "Tell me a joke"]).status == 1
    joke = run_llm(["-c", "Tell me a joke"])
    assert joke.stdout == "a joke\n", joke.stderr
    contents = [m["content"] for m in sent_to_script(script)[2]["messages"]]
    assert contents == ["hi", "hello", "Tell me a joke"]
    retried = run_llm(["--retry"])
    assert retried.stdout == "again\n", retried.stderr
    assert [m["content"] for m in sent_to_script(script)[3]["messages"]] == contents
    assert run_llm(["--retry", "with a prompt"]).status == 2


def test_a_thread_from_another_command_leaves_its_system_prompt_behind():
    spec = ModelSpec(name="echo", provider="echo", model_id="echo")
    request = Request(messages=[{"role": "system", "content": "Write <helpers> code."},
                                {"role": "user", "content": "count files"}])
    Exchange(spec, request, tool="llm-exec",
             stream_factory=lambda spec, request: iter([TextDelta("There are 3."), Finished("end_turn")])).run()
    lines = echoed(run_llm(["-c", "and directories?"]))
    assert all("system" not in line for line in lines)
    assert [line["content"] for line in lines] == ["count files", "There are 3.", "and directories?"]


# --- stop reasons and the token cap ---------------------------------------------------

def test_token_cap_warns_and_is_in_stack_and_logs(tmp_path):
    model = write_replies(tmp_path / "r.jsonl", {"text": "The answer is cut", "stop_reason": "max_tokens"})
    result = run_llm(["-m", model, "--max-tokens", "5", "-S", "long question"])
    assert result.status == 0
    assert "answer stopped at the token limit (5); raise --max-tokens" in result.stderr
    assert result.stack()[-1]["meta"]["stop_reason"] == "max_tokens"
    logs = run_llm(["logs"]).stdout
    assert "cut at the token limit" in logs and "[cut: the answer stopped at the token limit]" in logs


def test_every_assistant_message_has_a_stop_reason(tmp_path):
    assert run_llm(["-m", "echo", "-S", "hi"]).stack()[-1]["meta"]["stop_reason"] == "end_turn"
    model = write_replies(tmp_path / "r.jsonl", "plain")
    assert run_llm(["-m", model, "-S", "hi"]).stack()[-1]["meta"]["stop_reason"] == "end_turn"


def test_openai_length_is_reported_as_max_tokens(openai_server, write_config):  # noqa: F811
    write_config(f'[models.house]\nbase_url = "{openai_server.base_url}"\n')
    openai_server.script(Reply(text="cut", stop_reason="length"), Reply(text="whole"))
    cut = run_llm(["-m", "house", "-S", "q"])
    assert cut.stack()[-1]["meta"]["stop_reason"] == "max_tokens"
    assert "answer stopped at the token limit" in cut.stderr
    whole = run_llm(["-m", "house", "-S", "q"])
    assert whole.stack()[-1]["meta"]["stop_reason"] == "end_turn" and whole.stderr == ""


def test_anthropic_max_tokens_is_reported(anthropic_server, monkeypatch):  # noqa: F811
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", anthropic_server.base_url)
    anthropic_server.script(Reply(text="cut", stop_reason="max_tokens"))
    result = run_llm(["-m", "claude-sonnet-4-6", "--max-tokens", "3", "-S", "q"])
    assert result.stack()[-1]["meta"]["stop_reason"] == "max_tokens"
    assert "token limit (3)" in result.stderr


# --- empty piped stdin ------------------------------------------------------------------

def test_empty_piped_stdin_warns():
    result = run_process("llm", ["-m", "echo", "b"], input=b"")
    assert result.status == 0
    assert "stdin was empty" in result.stderr and "pipefail" in result.stderr
    quiet = run_process("llm", ["-m", "echo", "b"], input=b"a\n")
    assert "stdin" not in quiet.stderr


# --- llm logs -------------------------------------------------------------------------

def test_logs_headers_tool_and_short_ids():
    run_llm(["-m", "echo", "one"])
    run_llm(["-m", "echo", "two"])
    text = run_llm(["logs"]).stdout
    headers = [line for line in text.splitlines() if line.startswith("==> ")]
    assert len(headers) == 2 and "## " not in text
    assert all(" llm " in header and header.endswith(" <==") for header in headers)
    cids = {row["conversation_id"] for row in open_log().recent(None)}
    shown = [header.split("conversation ")[1].split()[0] for header in headers]
    assert all(len(short) < 12 for short in shown)
    assert {next(cid for cid in cids if cid.startswith(short)) for short in shown} == cids


def test_logs_filters_by_text_model_and_time(tmp_path):
    model = write_replies(tmp_path / "r.jsonl", "scripted answer")
    run_llm(["-m", "echo", "apples"])
    run_llm(["-m", model, "pears"])
    assert "apples" in run_llm(["logs", "-q", "APPLE"]).stdout
    assert "pears" not in run_llm(["logs", "-q", "apple"]).stdout
    by_model = run_llm(["logs", "-m", "echo"]).stdout
    assert "apples" in by_model and "pears" not in by_model
    assert "apples" in run_llm(["logs", "--since", "1h"]).stdout
    assert run_llm(["logs", "--since", "2999-01-01"]).stdout == ""
    assert run_llm(["logs", "--since", "yesterday-ish"]).status == 2


def test_hosted_openai_length_is_reported(openai_server, monkeypatch):  # noqa: F811
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("OPENAI_BASE_URL", openai_server.base_url)
    openai_server.script(Reply(text="cut", stop_reason="length"))
    assert run_llm(["-m", "gpt-4.1", "-S", "q"]).stack()[-1]["meta"]["stop_reason"] == "max_tokens"


def test_local_model_reports_the_token_cap(smollm2):  # noqa: F811
    result = run_llm(["-m", "local:smollm2", "--max-tokens", "2", "-S", "Write a long story about a fox."])
    assert result.stack()[-1]["meta"]["stop_reason"] == "max_tokens"
    assert "answer stopped at the token limit (2)" in result.stderr


@pytest.mark.parametrize("flag, said", [
    ("-c", "-c: there is no earlier conversation to continue"),
    ("--retry", "--retry: there is no earlier exchange to send again"),
])
def test_an_empty_log_names_the_flag_given(flag, said):
    result = run_llm([flag, *(["hello"] if flag == "-c" else [])])
    assert result.status == 2
    assert said in result.stderr


def test_llm_map_conversation_ids_start_with_their_random_part():
    from llmtools.config import resolve_model
    from llmtools.logs import new_id
    from llmtools.mapping.calls import ModelCaller

    before = new_id()[:6]
    caller = ModelCaller(resolve_model("echo"), log=False)
    assert caller.conversation_id[:6] not in (before, new_id()[:6])


def test_reading_a_fresh_home_creates_no_log(llmtools_home):
    from llmtools.cli.options import complete_conversation_ids

    assert complete_conversation_ids(None, None, "") == []
    shown = run_llm(["logs"])
    assert shown.status == 0 and shown.stdout == ""
    assert run_llm(["logs", "--cid", "abc"]).status == 2
    assert not (llmtools_home / "data" / "logs.db").exists()
