"""OpenAI-compatible servers as first-class models: a `[models.NAME]` entry with a base URL.

Against llama-cpp-python's own server (`python -m llama_cpp.server`) serving SmolLM2 on
127.0.0.1 (the llamafile / llama.cpp setup), and against the loopback OpenAI fake for a
server with no tokenize endpoint and no usage in its stream.
"""

from __future__ import annotations

import re

import pytest

from llmtools.config import resolve_model
from llmtools.logs import open_log
from llmtools.providers import load_provider
from llmtools.providers.base import Request, TextDelta, Usage
from llmtools.providers.compatible import CompatibleServerProvider, estimate_tokens
from llmtools.providers.context import notices_to
from tests.fakes import Reply, unused_port
from tests.fakes.fixtures import openai_server  # noqa: F401  (fixture)
from tests.fakes.llama_server import llama_server, smollm2_gguf  # noqa: F401  (fixtures)
from tests.helpers import run_llm, run_process

LONG_TEXT = " ".join(f"Paragraph {n}: the quick brown fox jumps over the lazy dog." for n in range(120))


@pytest.fixture
def house(llama_server, write_config):
    """`-m house`: the llama_cpp.server, configured as users configure llamafile."""
    def configure(context_size: int | None = 2048, **extra) -> str:
        lines = ["[models.house]", f'base_url = "{llama_server.base_url}"', 'model = "smollm2"']
        if context_size:
            lines.append(f"context_size = {context_size}")
        lines += [f"{key} = {value}" for key, value in extra.items()]
        write_config("\n".join(lines) + "\n")
        return "house"

    return configure


def test_a_configured_server_streams_with_real_usage_and_profile(house):
    result = run_llm(["-m", house(), "--max-tokens", "8", "--profile", "Say hi"])
    assert result.status == 0, result.stderr
    assert result.stdout.strip()
    [profile] = [line for line in result.stderr.splitlines() if line.startswith("profile:")]
    assert re.search(r"ttft=\d+\.\d+s", profile)
    assert re.search(r"in=\d+tok \(\d+\.\d tok/s\) out=\d+tok \(\d+\.\d tok/s\)", profile), profile
    [row] = open_log().recent(1)
    assert row["model"] == "house" and row["status"] == "ok"
    assert row["input_tokens"] > 3 and 1 <= row["output_tokens"] <= 8


def test_no_api_key_is_needed_or_sent_as_a_real_one(house, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    spec = resolve_model(house())
    assert spec.provider == "openai" and spec.api_key is None
    provider = load_provider(spec)
    assert isinstance(provider, CompatibleServerProvider)
    events = list(provider.stream(Request(messages=[{"role": "user", "content": "hi"}], max_tokens=3)))
    provider.close()
    assert any(isinstance(event, TextDelta) for event in events)


def test_token_counts_come_from_the_servers_tokenizer(house):
    provider = load_provider(resolve_model(house()))
    # SmolLM2's tokenizer makes 2 tokens of "Hello world"; bytes / 3 would say 4.
    assert provider.count_tokens("Hello world") == (2, False)
    provider.close()


def test_a_prompt_over_the_configured_context_is_cut_with_a_warning(house):
    result = run_llm(["-m", house(context_size=256), "--max-tokens", "8", "-S",
                      f"{LONG_TEXT}\n\nWhat animal jumps?"])
    assert result.status == 0, result.stderr
    [warning] = [line for line in result.stderr.splitlines() if "warning" in line and "token limit" not in line]
    assert "does not fit model house's 256-token context with 8 tokens kept" in warning
    assert "about" not in warning.split(":")[2]  # counted by the server's tokenizer, not guessed
    assert result.stack()[-1]["content"].strip()


def test_a_real_process_streams_from_the_server(house):
    result = run_process("llm", ["-m", house(), "--max-tokens", "6", "--profile", "Hello"])
    assert result.status == 0, result.stderr
    assert result.stdout.strip() and "profile: model=house" in result.stderr


def test_a_server_that_is_down_exits_69_in_one_line(write_config):
    port = unused_port()
    write_config(f'[models.gone]\nbase_url = "http://127.0.0.1:{port}/v1"\nretries = 0\n')
    result = run_llm(["-m", "gone", "hi"])
    assert result.status == 69, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0] == (f"llm: error: model gone: cannot connect to http://127.0.0.1:{port}/v1: "
                        "connection refused (gave up after 1 attempt)")


# --- a server with no tokenizer endpoint and no usage (the loopback fake) --------------------


def test_missing_usage_is_counted_and_context_is_estimated_conservatively(openai_server, write_config):
    openai_server.script(Reply("one two three", chunks=3, include_usage=False))
    write_config(f'[models.bare]\nbase_url = "{openai_server.base_url}"\ncontext_size = 200\n')
    provider = load_provider(resolve_model("bare"))
    told: list[tuple[str, str]] = []
    with notices_to(lambda level, message: told.append((level, message))):
        events = list(provider.stream(Request(messages=[{"role": "user", "content": LONG_TEXT}],
                                              max_tokens=10)))
    provider.close()
    [(level, warning)] = told
    assert level == "warning" and "the prompt (about " in warning
    usage = [event for event in events if isinstance(event, Usage)][-1]
    assert usage.output_tokens == 3  # one per streamed chunk
    sent = next(r for r in openai_server.requests if r.path.endswith("/chat/completions"))
    text = sent.body["messages"][-1]["content"]
    assert "characters cut here to fit the model's context" in text
    assert estimate_tokens(text) <= 200 - 10
    # It asked for a tokenizer once per route, found none, and did not ask again.
    probes = [r.path for r in openai_server.requests if "tokenize" in r.path]
    assert probes == ["/tokenize", "/extras/tokenize"]


def test_a_prompt_that_fits_by_the_estimate_costs_no_extra_request(openai_server, write_config):
    write_config(f'[models.bare]\nbase_url = "{openai_server.base_url}"\ncontext_size = 4096\n')
    result = run_llm(["-m", "bare", "hi"])
    assert result.status == 0, result.stderr
    assert [r.path for r in openai_server.requests] == ["/v1/chat/completions"]
