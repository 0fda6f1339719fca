"""Structured output on the wire: each provider sends Request.schema the way its API takes it,
through the real SDKs against the loopback fakes, and the real local model keeps to it."""

from __future__ import annotations

import json

import pytest

from llmtools import bind, schemas
from llmtools.providers.anthropic import AnthropicProvider
from llmtools.providers.base import Finished, ModelSpec, Request
from llmtools.providers.openai import OpenAIProvider, is_strict_schema, without_key
from tests.fakes import Reply
from tests.fakes.fixtures import anthropic_server, openai_server  # noqa: F401  (fixtures)
from tests.fakes.llama_server import llama_server, smollm2, smollm2_gguf  # noqa: F401  (fixtures)
from tests.fakes.streams import Run
from tests.helpers import run_command

VERDICT = json.dumps({"same": True, "reason": "both say four"})
ASK = [{"role": "user", "content": "Is 2+2 the same as four?"}]


def spec(provider: str, model_id: str, base_url: str, **options) -> ModelSpec:
    return ModelSpec(name=model_id, provider=provider, model_id=model_id, base_url=base_url,
                     api_key="sk-test-structured", timeout=5.0, max_retries=0, options=options)


def test_anthropic_gets_a_forced_tool_and_its_streamed_input_is_the_answer(anthropic_server):
    anthropic_server.script(Reply(VERDICT, chunks=4))
    provider = AnthropicProvider(spec("anthropic", "claude-sonnet-4-6", anthropic_server.base_url))
    run = Run(provider, Request(messages=ASK, schema=schemas.verdict_schema()))
    provider.close()
    assert run.error is None
    assert json.loads(run.text) == {"same": True, "reason": "both say four"}
    assert run.events[-1] == Finished("tool_use")
    body = anthropic_server.requests[0].body
    assert body["tools"] == [{"name": "comparison", "input_schema": schemas.verdict_schema(),
                              "description": schemas.verdict_schema()["description"]}]
    assert body["tool_choice"] == {"type": "tool", "name": "comparison"}


def test_anthropic_with_thinking_lets_the_model_choose_the_tool(anthropic_server):
    """The API refuses a forced tool with thinking on (the fake does too)."""
    anthropic_server.script(Reply(VERDICT, thinking="Two plus two..."))
    provider = AnthropicProvider(spec("anthropic", "claude-sonnet-4-6", anthropic_server.base_url))
    run = Run(provider, Request(messages=ASK, thinking="low", schema=schemas.verdict_schema()))
    provider.close()
    assert run.error is None and json.loads(run.text)["same"] is True
    assert anthropic_server.requests[0].body["tool_choice"] == {"type": "auto"}


def test_openai_gets_a_strict_json_schema_response_format(openai_server):
    openai_server.script(Reply(VERDICT))
    provider = OpenAIProvider(spec("openai", "gpt-4.1", openai_server.base_url))
    run = Run(provider, Request(messages=ASK, schema=schemas.verdict_schema()))
    provider.close()
    assert run.error is None and json.loads(run.text)["reason"] == "both say four"
    response_format = openai_server.requests[0].body["response_format"]
    assert response_format["type"] == "json_schema"
    assert response_format["json_schema"]["name"] == "comparison"
    assert response_format["json_schema"]["strict"] is True
    assert "maxLength" not in json.dumps(response_format)  # strict mode does not take it


@pytest.mark.parametrize("signature, strict", [
    ("search(first_name, last_name, company_name)", True),
    ("send(to: str, amount: float, urgent: bool = False)", True),
    ("send(to: str, **extra)", False),  # open arguments: strict mode cannot say so
    ("plot(points: Mapping[str, int])", False),
])
def test_binding_schemas_are_strict_where_openai_allows_and_the_api_accepts_them(
        openai_server, signature, strict):
    schema = schemas.binding_schema(bind.parse_signature(signature))
    provider = OpenAIProvider(spec("openai", "gpt-4.1", openai_server.base_url))
    run = Run(provider, Request(messages=ASK, schema=schema))
    provider.close()
    assert run.error is None, run.error  # the fake refuses a strict schema the real API would
    assert openai_server.requests[0].body["response_format"]["json_schema"]["strict"] is strict
    assert is_strict_schema(without_key(schema, "maxLength")) is strict


def test_a_compatible_server_gets_json_object_with_the_schema_unless_configured(openai_server, write_config):
    from llmtools.config import resolve_model
    from llmtools.providers import load_provider

    write_config(f'[models.house]\nbase_url = "{openai_server.base_url}"\n'
                 f'[models.studio]\nbase_url = "{openai_server.base_url}"\nresponse_format = "json_schema"\n')
    schema = schemas.list_schema(str)
    for name in ("house", "studio"):
        provider = load_provider(resolve_model(name))
        assert Run(provider, Request(messages=ASK, schema=schema)).error is None
        provider.close()
    house, studio = (request.body["response_format"] for request in openai_server.requests)
    assert house == {"type": "json_object", "schema": schema}
    assert studio["type"] == "json_schema" and studio["json_schema"]["schema"]["title"] == "list_items"


def test_llm_bind_and_llm_compare_through_the_anthropic_sdk(anthropic_server, monkeypatch):
    from llmtools.cli.bind import command as bind_command
    from llmtools.cli.compare import command as compare_command

    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-structured")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", anthropic_server.base_url)
    anthropic_server.script(
        Reply(json.dumps({"arguments": {"city": "Lyon", "days": 3}, "missing": [], "question": None})),
        Reply(json.dumps({"same": False, "reason": "one says Lyon, the other Paris"})))
    bound = run_command(bind_command, ["-m", "claude-sonnet-4-6", "forecast(city: str, days: int)"],
                        "Three days of weather for Lyon, please.", prog_name="llm-bind")
    assert bound.status == 0, bound.stderr
    assert bound.stdout == "forecast(city='Lyon', days=3)\n"
    compared = run_command(compare_command, ["-m", "claude-sonnet-4-6", "Lyon", "Paris"], prog_name="llm-compare")
    assert (compared.status, compared.stdout) == (1, "false # one says Lyon, the other Paris\n")
    bind_body, compare_body = (request.body for request in anthropic_server.requests)
    assert bind_body["tool_choice"] == {"type": "tool", "name": "bind_forecast"}
    assert bind_body["tools"][0]["input_schema"]["properties"]["arguments"]["properties"]["days"] == {
        "type": ["integer", "null"]}
    assert compare_body["tool_choice"] == {"type": "tool", "name": "comparison"}


# --- the real local model: a llama.cpp grammar holds it to the schema ----------------------------


def test_the_local_model_writes_json_that_fits_the_schema_under_a_grammar(smollm2):
    """Plumbing, not cleverness: whatever SmolLM2 binds, it is JSON of the asked shape."""
    from llmtools.cli.bind import command

    result = run_command(command, ["-m", "local:smollm2", "--temperature", "0", "--max-tokens", "300",
                                   "--json", "order(count: int, urgent: bool)"],
                         "Order 3 boxes, it is urgent.", prog_name="llm-bind")
    assert result.status in (0, 1), result.stderr  # bound, or a question: never unparseable
    assert "no JSON object" not in result.stderr
    assert set(json.loads(result.stdout)) == {"count", "urgent"}


def test_a_compatible_llama_server_turns_the_schema_into_a_grammar(llama_server, write_config):
    from llmtools.cli.compare import command

    write_config(f'[models.house]\nbase_url = "{llama_server.base_url}"\nmodel = "smollm2"\n')
    result = run_command(command, ["-m", "house", "--temperature", "0", "--max-tokens", "200",
                                   "The sky is blue.", "The sky is blue."], prog_name="llm-compare")
    assert result.status in (0, 1), result.stderr
    assert result.stdout.startswith(("true", "false"))


def test_the_schema_crosses_the_daemon_socket(anthropic_server, monkeypatch, llmtools_home):
    """A real llm-bind process, its model call through the daemon it starts."""
    from tests.helpers import run_process

    monkeypatch.delenv("LLMTOOLS_NO_DAEMON")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-structured")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", anthropic_server.base_url)
    anthropic_server.script(Reply(json.dumps({"arguments": {"city": "Oslo"}, "missing": [], "question": None})))
    result = run_process("llm-bind", ["-m", "claude-sonnet-4-6", "forecast(city: str)"], "Weather in Oslo?")
    assert (result.status, result.stdout) == (0, "forecast(city='Oslo')\n"), result.stderr
    assert anthropic_server.requests[0].body["tool_choice"] == {"type": "tool", "name": "bind_forecast"}
    assert (llmtools_home / "run" / "daemon.pid").exists()  # it was the daemon that called
