"""`llm` against the loopback Anthropic and OpenAI fakes, through the real SDKs.

What the user sees: the streamed answer, one-line errors with their exit statuses, and a
log row for every call, partial answers included.
"""

from __future__ import annotations

import pytest

from llmtools.logs import open_log
from tests.fakes import CutMidStream, HttpError, Reply, SlowFirstByte, unused_port
from tests.fakes.fixtures import anthropic_server, openai_server  # noqa: F401  (fixtures)
from tests.helpers import run_llm

ANTHROPIC_KEY = "sk-ant-cli-test-1234"
OPENAI_KEY = "sk-openai-cli-test-5678"


@pytest.fixture
def anthropic_env(anthropic_server, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", ANTHROPIC_KEY)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", anthropic_server.base_url)
    monkeypatch.setenv("LLMTOOLS_RETRY_BASE_DELAY", "0.01")
    return anthropic_server


@pytest.fixture
def openai_env(openai_server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", openai_server.base_url)
    monkeypatch.setenv("LLMTOOLS_RETRY_BASE_DELAY", "0.01")
    return openai_server


def test_default_model_with_an_anthropic_key_streams_and_logs_usage_and_cost(anthropic_env):
    anthropic_env.script(Reply(text="Paris is the capital.", input_tokens=1000, output_tokens=200))
    result = run_llm(["What is the capital of France?"])
    assert result.status == 0, result.stderr
    assert result.stdout == "Paris is the capital.\n"
    [request] = anthropic_env.requests
    assert request.body["model"] == "claude-sonnet-4-6"
    assert request.body["messages"] == [{"role": "user", "content": [
        {"type": "text", "text": "What is the capital of France?"}]}] or \
        request.body["messages"][0]["role"] == "user"
    [row] = open_log().recent(1)
    assert (row["status"], row["input_tokens"], row["output_tokens"]) == ("ok", 1000, 200)
    assert row["cost_usd"] == pytest.approx((1000 * 3.0 + 200 * 15.0) / 1e6)
    assert ANTHROPIC_KEY not in row["messages"] + (row["meta"] or "")


def test_system_prompt_reaches_anthropic_as_system(anthropic_env):
    run_llm(["-m", "claude-haiku-4-5", "-s", "Be terse.", "hi"])
    [request] = anthropic_env.requests
    system = request.body["system"]
    assert system == "Be terse." or system[0]["text"] == "Be terse."


def test_stack_output_carries_usage_cost_and_timing_in_meta(openai_env):
    openai_env.script(Reply(text="Four.", input_tokens=20, output_tokens=2))
    result = run_llm(["-m", "gpt-4.1", "-S", "2+2?"])
    assert result.status == 0, result.stderr
    answer = result.stack()[-1]
    assert answer["content"] == "Four."
    meta = answer["meta"]
    assert meta["model"] == "gpt-4.1" and meta["usage"] == {"input_tokens": 20, "output_tokens": 2}
    assert meta["cost_usd"] == pytest.approx((20 * 2.0 + 2 * 8.0) / 1e6)
    assert meta["timing"]["ttft_s"] <= meta["timing"]["total_s"]


def test_rate_limit_is_retried_with_a_notice_on_stderr(anthropic_env):
    anthropic_env.script(HttpError.rate_limited(retry_after="0.1"), Reply(text="after the wait"))
    result = run_llm(["-m", "claude-sonnet-4-6", "q"])
    assert result.status == 0
    assert result.stdout == "after the wait\n"
    assert "rate limited" in result.stderr and "retrying in 0.1s" in result.stderr


def test_stream_cut_keeps_the_partial_answer_and_logs_it(anthropic_env):
    anthropic_env.script(CutMidStream(text_before_cut="The answer be"))
    result = run_llm(["-m", "claude-sonnet-4-6", "q"])
    assert result.status == 75
    assert result.stdout.startswith("The answer be")
    assert "llm: error: model claude-sonnet-4-6" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    [row] = open_log().recent(1)
    assert row["status"] == "error" and row["response"] == "The answer be"


def test_stream_cut_with_stack_output_writes_the_partial_answer_marked(openai_env):
    openai_env.script(CutMidStream(text_before_cut="Half"))
    result = run_llm(["-m", "gpt-4.1", "-S", "q"])
    assert result.status == 75
    answer = result.stack()[-1]
    assert answer["content"] == "Half" and answer["meta"]["status"] == "error"


def test_server_errors_past_the_retries_exit_75(openai_env, monkeypatch):
    monkeypatch.setenv("LLMTOOLS_RETRIES", "1")
    openai_env.script(HttpError.server_error(500), HttpError.server_error(500))
    result = run_llm(["-m", "gpt-4.1", "q"])
    assert result.status == 75
    assert "gave up after 2 attempts" in result.stderr
    assert len(openai_env.requests) == 2


def test_slow_first_byte_times_out_with_exit_75(anthropic_env, monkeypatch):
    monkeypatch.setenv("LLMTOOLS_RETRIES", "0")
    anthropic_env.script(SlowFirstByte())
    result = run_llm(["-m", "claude-sonnet-4-6", "--timeout", "0.3", "q"])
    assert result.status == 75, result.stderr
    assert "0.3" in result.stderr


def test_unreachable_base_url_exits_69(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{unused_port()}/v1")
    monkeypatch.setenv("LLMTOOLS_RETRIES", "1")
    monkeypatch.setenv("LLMTOOLS_RETRY_BASE_DELAY", "0.01")
    result = run_llm(["-m", "gpt-4.1", "q"])
    assert result.status == 69
    assert "cannot connect" in result.stderr and OPENAI_KEY not in result.stderr
    assert "Traceback" not in result.stderr


def test_rejected_key_exits_1_without_showing_the_key(anthropic_env):
    anthropic_env.script(HttpError.unauthorized())
    result = run_llm(["-m", "claude-sonnet-4-6", "q"])
    assert result.status == 1
    assert "401" in result.stderr and ANTHROPIC_KEY not in result.stderr


def test_configured_openai_compatible_model_needs_no_key(openai_server, write_config):
    write_config(f'[models.house]\nbase_url = "{openai_server.base_url}"\nmodel = "house-7b"\n')
    openai_server.script(Reply(text="from the house model"))
    result = run_llm(["-m", "house", "hello"])
    assert result.status == 0, result.stderr
    assert result.stdout == "from the house model\n"
    assert openai_server.requests[0].body["model"] == "house-7b"


def test_profile_reports_real_token_rates(anthropic_env):
    anthropic_env.script(Reply(text="x" * 50, chunks=5, input_tokens=300, output_tokens=40))
    result = run_llm(["-m", "claude-sonnet-4-6", "--profile", "q"])
    assert "in=300tok" in result.stderr and "out=40tok" in result.stderr and "cost=$" in result.stderr


@pytest.mark.parametrize("signum, status, state", [(2, 130, "interrupted"), (15, 143, "interrupted")])
def test_interrupt_mid_answer_keeps_and_logs_the_partial_answer(anthropic_env, signum, status, state):
    import os
    import subprocess

    from tests.conftest import command_path

    anthropic_env.script(CutMidStream(text_before_cut="Half an ans", hold=True))
    process = subprocess.Popen([command_path("llm"), "-m", "claude-sonnet-4-6", "q"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    received = b""
    while len(received) < len("Half an ans"):  # the partial answer has streamed out
        chunk = process.stdout.read1(64)
        assert chunk, process.stderr.read()
        received += chunk
    os.kill(process.pid, signum)
    rest, errors = process.communicate(timeout=30)
    assert process.returncode == status, errors
    assert (received + rest).decode().startswith("Half an ans")
    assert b"Traceback" not in errors
    [row] = open_log().recent(1)
    assert (row["status"], row["response"]) == (state, "Half an ans")
