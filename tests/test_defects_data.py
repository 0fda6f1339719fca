"""Issue 14: bad data gets its documented status (65 with a line number, 2 for bad URLs)."""

from __future__ import annotations

import pytest

from llmtools import config
from llmtools.cli.fetch import command as fetch_command
from tests.helpers import run_command, run_llm

DEEP = '{"role": "user", "content": "x", "meta": ' + "[" * 100_000 + "]" * 100_000 + "}"


@pytest.mark.parametrize("stack_text", [
    '{"role": "user", "content": "fine"}\n' + DEEP + "\n",
    DEEP + "\n",
])
def test_deeply_nested_json_is_bad_data_with_its_line(stack_text):
    result = run_llm(["-m", "echo"], input=stack_text)
    assert result.status == 65, result.stderr
    line = 2 if stack_text.startswith('{"role": "user", "content": "fine"}') else 1
    assert f"line {line}: not valid JSON (nested too deeply)" in result.stderr
    assert "internal error" not in result.stderr


def test_a_lone_surrogate_escape_is_bad_data_with_its_line():
    text = '{"role": "user", "content": "ok"}\n{"role": "user", "content": "a\\ud800b"}\n'
    result = run_llm(["-m", "echo"], input=text)
    assert result.status == 65, result.stderr
    assert "stdin line 2:" in result.stderr and "surrogate" in result.stderr


def test_a_surrogate_pair_is_a_character():
    result = run_llm(["-m", "echo", "-S"], input='{"role": "user", "content": "\\ud83d\\ude00"}\n')
    assert result.status == 0, result.stderr
    assert "\U0001F600" in result.stdout


@pytest.mark.parametrize("url", ["http://[::1", "http://127.0.0.1:99999/", "https://:443/"])
def test_malformed_urls_are_usage_errors(url):
    fetched = run_command(fetch_command, ["--no-browser", url], prog_name="llm-fetch")
    assert fetched.status == 2, fetched.stderr
    assert "not a valid URL" in fetched.stderr
    asked = run_llm(["-m", "echo", "-p", url, "hi"])
    assert asked.status == 2, asked.stderr


@pytest.mark.parametrize("provider, env, default", [
    ("anthropic", "ANTHROPIC_BASE_URL", "https://api.anthropic.com"),
    ("openai", "OPENAI_BASE_URL", "https://api.openai.com/v1"),
])
def test_an_empty_base_url_variable_counts_as_unset(monkeypatch, provider, env, default):
    from llmtools.providers import load_provider

    monkeypatch.setenv(env, "")
    monkeypatch.setenv(f"{provider.upper()}_API_KEY", "sk-test")
    model = "claude-haiku-4-5" if provider == "anthropic" else "gpt-4.1"
    spec = config.resolve_model(model)
    client = load_provider(spec)._build_client()
    assert str(client.base_url).rstrip("/") == default
