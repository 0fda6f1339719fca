"""The OpenAI provider, through the retry layer and the real SDK, against a loopback fake.

The fake stands for an OpenAI-compatible server (a base URL is set), which is also how
the official API is reached in every test here: nothing leaves 127.0.0.1.
"""

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
from llmtools.providers.base import Finished, ModelSpec, Request, TextDelta, Usage
from llmtools.providers.openai import PLACEHOLDER_KEY, OpenAIProvider
from llmtools.providers.retry import stream_with_retries
from tests.fakes import CutMidStream, ErrorMidStream, HttpError, Reply, SlowFirstByte, unused_port
from tests.fakes.fixtures import openai_server  # noqa: F401  (pytest fixture)
from tests.fakes.streams import Run

API_KEY = "sk-proj-test-4f8a2c6e1d"
HELLO = Request(messages=[{"role": "user", "content": "Say hello."}])


def make_provider(base_url: str | None, **spec_fields) -> OpenAIProvider:
    fields = dict(name="gpt-test", provider="openai", model_id="gpt-4.1",
                  base_url=base_url, api_key=API_KEY, api_key_env="OPENAI_API_KEY",
                  timeout=5.0, max_retries=2, retry_base_delay=0.01)
    fields.update(spec_fields)
    return OpenAIProvider(ModelSpec(**fields))


@pytest.fixture
def provider(openai_server):
    provider = make_provider(openai_server.base_url)
    yield provider
    provider.close()


# --- answers -------------------------------------------------------------------------


def test_streams_the_text_in_pieces_with_usage_and_finish_reason(openai_server, provider):
    openai_server.script(Reply("Hello there, how can I help?", chunks=4,
                               input_tokens=21, output_tokens=9))
    run = Run(provider, HELLO)
    assert run.error is None
    assert run.text == "Hello there, how can I help?"
    assert sum(isinstance(event, TextDelta) for event in run.events) == 4
    assert run.usage() == (21, 9)
    assert run.events[-1] == Finished("stop")


def test_a_server_that_sends_no_usage_yields_none(openai_server, provider):
    openai_server.script(Reply("No counts here.", include_usage=False))
    run = Run(provider, HELLO)
    assert run.error is None
    assert run.text == "No counts here."
    assert not any(isinstance(event, Usage) for event in run.events)
    assert run.events[-1] == Finished("stop")


def test_sends_a_leading_system_message_merged_turns_and_data_url_images(openai_server, provider):
    request = Request(messages=[
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "First question."},
        {"role": "user", "content": "Second question."},
        {"role": "assistant", "content": "An answer."},
        {"role": "user", "content": [
            {"type": "text", "text": "What is in this picture?"},
            {"type": "image", "media_type": "image/png", "data": "iVBORw0KGgo="},
        ]},
    ], max_tokens=300, temperature=0.2)
    assert Run(provider, request).error is None
    [received] = openai_server.requests
    assert received.path == "/v1/chat/completions"
    assert received.headers["authorization"] == f"Bearer {API_KEY}"
    body = received.body
    assert body["model"] == "gpt-4.1"
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "First question.\n\nSecond question."},
        {"role": "assistant", "content": "An answer."},
        {"role": "user", "content": [
            {"type": "text", "text": "What is in this picture?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        ]},
    ]
    # A compatible server is sent the max_tokens it understands.
    assert body["max_tokens"] == 300 and "max_completion_tokens" not in body
    assert body["temperature"] == 0.2
    assert "reasoning_effort" not in body


def test_the_official_api_gets_max_completion_tokens():
    provider = make_provider(None)
    params = provider.request_params(Request(messages=HELLO.messages, max_tokens=300))
    assert params["max_completion_tokens"] == 300 and "max_tokens" not in params


@pytest.mark.parametrize("thinking, effort", [
    ("low", "low"), ("high", "high"), ("1000", "low"), ("3000", "medium"), ("50000", "high"),
])
def test_thinking_becomes_reasoning_effort_without_temperature(
        openai_server, provider, thinking, effort):
    openai_server.script(Reply("Forty-two.", thinking="Let me work this out."))
    run = Run(provider, Request(messages=HELLO.messages, thinking=thinking, temperature=0.7))
    assert run.error is None
    assert run.thinking == "Let me work this out."
    assert run.text == "Forty-two."
    body = openai_server.requests[0].body
    assert body["reasoning_effort"] == effort
    assert "temperature" not in body


def test_a_compatible_server_without_a_key_gets_a_placeholder(openai_server):
    provider = make_provider(openai_server.base_url, api_key=None)
    try:
        run = Run(provider, HELLO)
    finally:
        provider.close()
    assert run.error is None
    assert openai_server.requests[0].headers["authorization"] == f"Bearer {PLACEHOLDER_KEY}"


def test_one_provider_serves_concurrent_requests(openai_server, provider):
    runs: list[Run] = []
    threads = [threading.Thread(target=lambda: runs.append(Run(provider, HELLO)))
               for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert [run.error for run in runs] == [None] * 4
    assert len(openai_server.requests) == 4


# --- retries ---------------------------------------------------------------------------


@pytest.mark.parametrize("rate_limited, pause", [
    (HttpError.rate_limited("0.2"), 0.2),
    (HttpError.rate_limited(None, retry_after_ms="150"), 0.15),
])
def test_429_waits_as_long_as_the_server_asks_then_succeeds(
        openai_server, provider, rate_limited, pause):
    openai_server.script(rate_limited, Reply("After the pause."))
    run = Run(provider, HELLO)
    assert run.error is None
    assert run.text == "After the pause."
    first, second = openai_server.requests
    assert second.received_at - first.received_at >= pause
    assert len(run.retries) == 1 and "rate limited (429)" in run.retries[0]


def test_429_for_an_exhausted_quota_is_not_retried(openai_server, provider):
    openai_server.script(HttpError(429, "insufficient_quota", "You exceeded your current quota",
                                   code="insufficient_quota"))
    run = Run(provider, HELLO)
    assert type(run.error) is ProviderError
    assert "quota exceeded (429)" in str(run.error)
    assert len(openai_server.requests) == 1


def test_503_then_success(openai_server, provider):
    openai_server.script(HttpError.server_error(503, "The engine is currently overloaded"),
                         Reply("Better now."))
    run = Run(provider, HELLO)
    assert run.error is None
    assert run.text == "Better now."
    assert "service unavailable (503)" in run.retries[0]


def test_500_past_max_retries_gives_up_naming_the_model_and_the_attempts(openai_server, provider):
    openai_server.script(*[HttpError.server_error()] * 3, Reply("too late"))
    run = Run(provider, HELLO)
    assert isinstance(run.error, ProviderBusy)
    assert run.error.status == ExitStatus.TEMPORARY_FAILURE == 75
    message = str(run.error)
    assert "gpt-test" in message and "3 attempts" in message and "500" in message
    assert "\n" not in message
    assert len(openai_server.requests) == 3


def test_an_error_chunk_before_any_text_is_retried(openai_server, provider):
    openai_server.script(ErrorMidStream("server_error", "The server had an error"),
                         Reply("Recovered."))
    run = Run(provider, HELLO)
    assert run.error is None
    assert run.text == "Recovered."
    assert "The server had an error" in run.retries[0]


# --- failures ----------------------------------------------------------------------------


@pytest.mark.parametrize("reset", [False, True], ids=["closed", "reset"])
def test_a_stream_cut_mid_answer_keeps_the_partial_text_and_is_not_resent(
        openai_server, provider, reset):
    openai_server.script(CutMidStream(text_before_cut="The answer beg", reset=reset))
    run = Run(provider, HELLO)
    assert run.text == "The answer beg"
    assert isinstance(run.error, StreamCut)
    assert run.error.status == 75
    assert "gpt-test" in str(run.error) and "before the answer finished" in str(run.error)
    assert len(openai_server.requests) == 1


def test_an_error_chunk_mid_answer_is_a_stream_cut(openai_server, provider):
    openai_server.script(ErrorMidStream("server_error", "boom", text_before_error="Half an ans"))
    run = Run(provider, HELLO)
    assert run.text == "Half an ans"
    assert isinstance(run.error, StreamCut) and run.error.status == 75
    assert "boom" in str(run.error)


def test_a_slow_first_byte_times_out_and_gives_up_after_the_retries(openai_server):
    provider = make_provider(openai_server.base_url, timeout=0.3, max_retries=1)
    openai_server.script(SlowFirstByte(), SlowFirstByte())
    try:
        run = Run(provider, HELLO)
    finally:
        provider.close()
    assert isinstance(run.error, ProviderBusy) and run.error.status == 75
    assert "no response within 0.3s" in str(run.error) and "2 attempts" in str(run.error)
    assert len(openai_server.requests) == 2


def test_connection_refused_is_unreachable():
    base_url = f"http://127.0.0.1:{unused_port()}/v1"
    provider = make_provider(base_url, max_retries=1)
    try:
        run = Run(provider, HELLO)
    finally:
        provider.close()
    assert isinstance(run.error, ProviderUnreachable)
    assert run.error.status == ExitStatus.UNAVAILABLE == 69
    assert f"cannot connect to {base_url}: connection refused" in str(run.error)


def test_401_fails_at_once_without_showing_the_key(openai_server, provider):
    # A server that echoes the key back must not get it onto the user's terminal.
    openai_server.script(HttpError.unauthorized(f"Incorrect API key provided: {API_KEY}"))
    run = Run(provider, HELLO)
    assert type(run.error) is ProviderError
    assert run.error.status == ExitStatus.FAILURE == 1
    assert "authentication failed (401): Incorrect API key provided" in str(run.error)
    assert API_KEY not in str(run.error)
    assert len(openai_server.requests) == 1


def test_no_key_and_no_base_url_is_a_usage_error_naming_the_variable():
    provider = make_provider(None, api_key=None)
    run = Run(provider, HELLO)
    assert isinstance(run.error, UsageError)
    assert run.error.status == ExitStatus.USAGE
    assert "OPENAI_API_KEY" in str(run.error) and "gpt-test" in str(run.error)


def test_importing_the_provider_does_not_import_the_sdk():
    probe = "import sys, llmtools.providers.openai; print('openai' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            timeout=30, check=True)
    assert result.stdout.strip() == "False"


# --- a warm provider --------------------------------------------------------------------


def test_a_warm_provider_reuses_its_connection(openai_server, provider):
    for _ in range(3):
        assert Run(provider, HELLO).error is None
    assert len({received.client_port for received in openai_server.requests}) == 1


def test_a_stream_abandoned_part_way_leaves_the_provider_usable(openai_server, provider):
    openai_server.script(Reply("An answer nobody reads to the end.", chunks=5))
    events = stream_with_retries(provider, HELLO)
    assert any(isinstance(event, TextDelta) for event in events)
    events.close()
    run = Run(provider, HELLO)
    assert run.error is None and run.text == Reply().text


@pytest.mark.parametrize("model_id, sends_stop", [("gpt-4.1", True), ("o3", False), ("gpt-5-mini", False)])
def test_stop_is_left_out_for_the_official_apis_reasoning_models(model_id, sends_stop):
    spec = ModelSpec(name=model_id, provider="openai", model_id=model_id, api_key="sk-x")
    params = OpenAIProvider(spec).request_params(
        Request(messages=[{"role": "user", "content": "q"}], stop=["</helpers>"]))
    assert ("stop" in params) is sends_stop
