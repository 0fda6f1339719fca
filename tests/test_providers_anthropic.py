"""The Anthropic provider, through the retry layer and the real SDK, against a loopback fake."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest

from llmtools.errors import (
    ExitStatus,
    ProviderBusy,
    ProviderError,
    ProviderUnreachable,
    StreamCut,
    UsageError,
)
from llmtools.providers.anthropic import AnthropicProvider
from llmtools.providers.base import Finished, ModelSpec, Request, TextDelta
from llmtools.providers.retry import stream_with_retries
from tests.fakes import CutMidStream, ErrorMidStream, HttpError, Reply, SlowFirstByte, unused_port
from tests.fakes.fixtures import anthropic_server  # noqa: F401  (pytest fixture)
from tests.fakes.streams import Run

API_KEY = "sk-ant-test-7c1d9e0f2b"
HELLO = Request(messages=[{"role": "user", "content": "Say hello."}])


def make_provider(base_url: str, **spec_fields) -> AnthropicProvider:
    fields = dict(name="claude-test", provider="anthropic", model_id="claude-sonnet-4-6",
                  base_url=base_url, api_key=API_KEY, api_key_env="ANTHROPIC_API_KEY",
                  timeout=5.0, max_retries=2, retry_base_delay=0.01)
    fields.update(spec_fields)
    return AnthropicProvider(ModelSpec(**fields))


@pytest.fixture
def provider(anthropic_server):
    provider = make_provider(anthropic_server.base_url)
    yield provider
    provider.close()


# --- answers -------------------------------------------------------------------------


def test_streams_the_text_in_pieces_with_usage_and_stop_reason(anthropic_server, provider):
    anthropic_server.script(Reply("Hello there, how can I help?", chunks=4,
                                  input_tokens=21, output_tokens=9))
    run = Run(provider, HELLO)
    assert run.error is None
    assert run.text == "Hello there, how can I help?"
    assert sum(isinstance(event, TextDelta) for event in run.events) == 4
    assert run.usage() == (21, 9)
    assert run.events[-1] == Finished("end_turn")


def test_sends_system_apart_merged_alternating_turns_and_image_blocks(anthropic_server, provider):
    request = Request(messages=[
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "First question."},
        {"role": "user", "content": "Second question."},
        {"role": "assistant", "content": "An answer."},
        {"role": "system", "content": "Use English."},
        {"role": "user", "content": [
            {"type": "text", "text": "What is in this picture?"},
            {"type": "image", "media_type": "image/png", "data": "iVBORw0KGgo="},
        ]},
    ], cache=False)  # the turns as they are; cache breakpoints: tests/test_prompt_cache.py
    assert Run(provider, request).error is None
    [received] = anthropic_server.requests
    assert received.path == "/v1/messages"
    assert received.headers.get("authorization") == f"Bearer {API_KEY}" \
        or received.headers.get("x-api-key") == API_KEY
    body = received.body
    assert body["model"] == "claude-sonnet-4-6"
    assert body["stream"] is True
    assert body["system"] == "Be brief.\n\nUse English."
    assert body["max_tokens"] == 8192
    assert "thinking" not in body and "temperature" not in body
    assert body["messages"] == [
        {"role": "user", "content": "First question.\n\nSecond question."},
        {"role": "assistant", "content": "An answer."},
        {"role": "user", "content": [
            {"type": "text", "text": "What is in this picture?"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                         "data": "iVBORw0KGgo="}},
        ]},
    ]


def test_max_tokens_and_temperature_are_sent_as_asked(anthropic_server, provider):
    request = Request(messages=HELLO.messages, max_tokens=300, temperature=0.2)
    assert Run(provider, request).error is None
    body = anthropic_server.requests[0].body
    assert body["max_tokens"] == 300
    assert body["temperature"] == 0.2


@pytest.mark.parametrize("thinking, budget", [("2048", 2048), ("low", 1024), ("high", 16384)])
def test_thinking_sends_a_budget_below_max_tokens_and_no_temperature(
        anthropic_server, provider, thinking, budget):
    anthropic_server.script(Reply("Forty-two.", thinking="Let me work this out."))
    run = Run(provider, Request(messages=HELLO.messages, thinking=thinking, temperature=0.7))
    assert run.error is None
    assert run.thinking == "Let me work this out."
    assert run.text == "Forty-two."
    body = anthropic_server.requests[0].body
    assert body["thinking"] == {"type": "enabled", "budget_tokens": budget}
    assert body["max_tokens"] == budget + 8192
    assert "temperature" not in body


def test_a_thinking_budget_the_api_would_refuse_is_a_usage_error(anthropic_server, provider):
    run = Run(provider, Request(messages=HELLO.messages, thinking="500"))
    assert isinstance(run.error, UsageError)
    assert "1024" in str(run.error)
    assert anthropic_server.requests == []


def test_one_provider_serves_concurrent_requests(anthropic_server, provider):
    runs: list[Run] = []
    threads = [threading.Thread(target=lambda: runs.append(Run(provider, HELLO)))
               for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert [run.error for run in runs] == [None] * 4
    assert {run.text for run in runs} == {Reply().text}
    assert len(anthropic_server.requests) == 4


# --- retries ---------------------------------------------------------------------------


@pytest.mark.parametrize("rate_limited, pause", [
    (HttpError.rate_limited("0.2"), 0.2),
    (HttpError.rate_limited(None, retry_after_ms="150"), 0.15),
])
def test_429_waits_as_long_as_the_server_asks_then_succeeds(
        anthropic_server, provider, rate_limited, pause):
    anthropic_server.script(rate_limited, Reply("After the pause."))
    run = Run(provider, HELLO)
    assert run.error is None
    assert run.text == "After the pause."
    first, second = anthropic_server.requests
    assert second.received_at - first.received_at >= pause
    assert len(run.retries) == 1 and "rate limited (429)" in run.retries[0]


def test_529_overloaded_is_retried(anthropic_server, provider):
    anthropic_server.script(HttpError.overloaded(), Reply("Better now."))
    run = Run(provider, HELLO)
    assert run.error is None
    assert run.text == "Better now."
    assert "overloaded (529)" in run.retries[0]


def test_500_past_max_retries_gives_up_naming_the_model_and_the_attempts(
        anthropic_server, provider):
    anthropic_server.script(*[HttpError.server_error()] * 3, Reply("too late"))
    run = Run(provider, HELLO)
    assert isinstance(run.error, ProviderBusy)
    assert run.error.status == ExitStatus.TEMPORARY_FAILURE == 75
    message = str(run.error)
    assert "claude-test" in message and "3 attempts" in message and "500" in message
    assert "\n" not in message
    assert len(anthropic_server.requests) == 3
    assert run.text == ""


def test_an_error_event_before_any_text_is_retried(anthropic_server, provider):
    anthropic_server.script(ErrorMidStream("overloaded_error", "Overloaded"), Reply("Recovered."))
    run = Run(provider, HELLO)
    assert run.error is None
    assert run.text == "Recovered."
    assert "overloaded" in run.retries[0]


def test_a_cut_before_any_text_is_retried(anthropic_server, provider):
    anthropic_server.script(CutMidStream(text_before_cut=""), Reply("Second try."))
    run = Run(provider, HELLO)
    assert run.error is None
    assert run.text == "Second try."
    assert len(anthropic_server.requests) == 2


# --- failures ----------------------------------------------------------------------------


@pytest.mark.parametrize("reset", [False, True], ids=["closed", "reset"])
def test_a_stream_cut_mid_answer_keeps_the_partial_text_and_is_not_resent(
        anthropic_server, provider, reset):
    anthropic_server.script(CutMidStream(text_before_cut="The answer beg", reset=reset))
    run = Run(provider, HELLO)
    assert run.text == "The answer beg"
    assert isinstance(run.error, StreamCut)
    assert run.error.status == 75
    assert "claude-test" in str(run.error) and "before the answer finished" in str(run.error)
    assert len(anthropic_server.requests) == 1


def test_an_error_event_mid_answer_is_a_stream_cut(anthropic_server, provider):
    anthropic_server.script(ErrorMidStream(text_before_error="Half an ans"))
    run = Run(provider, HELLO)
    assert run.text == "Half an ans"
    assert isinstance(run.error, StreamCut) and run.error.status == 75
    assert "overloaded" in str(run.error)
    assert len(anthropic_server.requests) == 1


def test_a_slow_first_byte_times_out_and_gives_up_after_the_retries(anthropic_server):
    provider = make_provider(anthropic_server.base_url, timeout=0.3, max_retries=1)
    anthropic_server.script(SlowFirstByte(), SlowFirstByte())
    try:
        run = Run(provider, HELLO)
    finally:
        provider.close()
    assert isinstance(run.error, ProviderBusy) and run.error.status == 75
    assert "no response within 0.3s" in str(run.error) and "2 attempts" in str(run.error)
    assert len(anthropic_server.requests) == 2


def test_connection_refused_is_unreachable():
    base_url = f"http://127.0.0.1:{unused_port()}"
    provider = make_provider(base_url, max_retries=1)
    try:
        run = Run(provider, HELLO)
    finally:
        provider.close()
    assert isinstance(run.error, ProviderUnreachable)
    assert run.error.status == ExitStatus.UNAVAILABLE == 69
    assert f"cannot connect to {base_url}: connection refused" in str(run.error)


def test_401_fails_at_once_without_showing_the_key(anthropic_server, provider):
    # A server that echoes the key back must not get it onto the user's terminal.
    anthropic_server.script(HttpError.unauthorized(f"invalid x-api-key: {API_KEY}"))
    run = Run(provider, HELLO)
    assert type(run.error) is ProviderError
    assert run.error.status == ExitStatus.FAILURE == 1
    assert "authentication failed (401): invalid x-api-key" in str(run.error)
    assert API_KEY not in str(run.error)
    assert len(anthropic_server.requests) == 1


def test_a_missing_key_is_a_usage_error_naming_the_variable(anthropic_server):
    provider = make_provider(anthropic_server.base_url, api_key=None)
    run = Run(provider, HELLO)
    assert isinstance(run.error, UsageError)
    assert run.error.status == ExitStatus.USAGE
    assert "ANTHROPIC_API_KEY" in str(run.error) and "claude-test" in str(run.error)
    assert anthropic_server.requests == []


def test_importing_the_provider_does_not_import_the_sdk():
    probe = "import sys, llmtools.providers.anthropic; print('anthropic' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            timeout=30, check=True)
    assert result.stdout.strip() == "False"


# --- a warm provider --------------------------------------------------------------------


def test_a_warm_provider_reuses_its_connection(anthropic_server, provider):
    for _ in range(3):
        assert Run(provider, HELLO).error is None
    assert len({received.client_port for received in anthropic_server.requests}) == 1


def test_a_stream_abandoned_part_way_leaves_the_provider_usable(anthropic_server, provider):
    anthropic_server.script(Reply("An answer nobody reads to the end.", chunks=5))
    events = stream_with_retries(provider, HELLO)
    assert any(isinstance(event, TextDelta) for event in events)
    events.close()
    run = Run(provider, HELLO)
    assert run.error is None and run.text == Reply().text
