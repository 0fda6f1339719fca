"""The SDK clients take their base URL from the model spec (resolved where the command runs),
never from the environment of the process that builds them (the daemon's may be another's)."""

from __future__ import annotations

import pytest

from llmtools import config

CASES = [("anthropic", "claude-haiku-4-5", "https://api.anthropic.com"),
         ("openai", "gpt-4.1", "https://api.openai.com/v1")]


@pytest.mark.parametrize("provider, model, default", CASES)
def test_the_builders_environment_does_not_change_the_base_url(monkeypatch, provider, model, default):
    from llmtools.providers import load_provider

    monkeypatch.setenv(f"{provider.upper()}_API_KEY", "sk-test")
    spec = config.resolve_model(model)  # as the command resolved it: no base URL variable set
    monkeypatch.setenv(f"{provider.upper()}_BASE_URL", "http://127.0.0.1:9/someone-elses")
    client = load_provider(spec)._build_client()
    assert str(client.base_url).rstrip("/") == default


@pytest.mark.parametrize("provider, model, default", CASES)
def test_a_configured_model_keeps_the_callers_base_url_variable(monkeypatch, write_config, provider, model, default):
    from llmtools.providers import load_provider

    write_config(f'[models.renamed]\nprovider = "{provider}"\nmodel = "{model}"\n')
    monkeypatch.setenv(f"{provider.upper()}_API_KEY", "sk-test")
    monkeypatch.setenv(f"{provider.upper()}_BASE_URL", "http://127.0.0.1:9/v1")
    spec = config.resolve_model("renamed")
    monkeypatch.delenv(f"{provider.upper()}_BASE_URL")
    client = load_provider(spec)._build_client()
    assert str(client.base_url).rstrip("/") == "http://127.0.0.1:9/v1"
