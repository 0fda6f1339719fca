"""Prompt caching: Anthropic breakpoints, OpenAI's cached tokens, usage, cost, log and --profile.

The loopback Anthropic server reports cache reads and writes from the `cache_control`
markers it receives, as the API does (tests/fakes/anthropic_server.py: PromptCache).
"""

from __future__ import annotations

import json
import re
import sqlite3

import pytest

from llmtools.logs import open_log
from llmtools.providers.base import Usage, event_from_json, event_to_json
from llmtools.providers.catalog import cost_usd
from llmtools.providers.prompt_cache import MAX_BREAKPOINTS, mark_cache_breakpoints
from tests.fakes import Reply
from tests.fakes.fixtures import anthropic_server, openai_server  # noqa: F401  (fixtures)
from tests.helpers import run_command, run_llm

STEPS = 6


@pytest.fixture
def anthropic_env(anthropic_server, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-cache-test")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", anthropic_server.base_url)
    monkeypatch.setenv("LLMTOOLS_RETRY_BASE_DELAY", "0.01")
    anthropic_server.count_tokens = True
    return anthropic_server


def run_exec(args: list[str], input: str | None = None):
    from llmtools.cli.exec import exec_command
    from llmtools.inputs import group_exclusions

    return run_command(exec_command, args, input, prog_name="llm-exec", argv_filter=group_exclusions)


def block(prose: str, code: str) -> str:
    return f"{prose}\n<helpers>\n{code}\n</helpers>"


def six_step_task(server) -> list[dict]:
    """Run a scripted 6-call llm-exec task (5 blocks, then the answer); its log rows."""
    server.script(*[Reply(text=block(f"Step {n}.", f"value_{n} = {n} * 7\nprint(value_{n})"),
                          output_tokens=20) for n in range(1, STEPS)],
                  Reply(text="The values are 7 to 35.", output_tokens=10))
    # A task over a document (a realistic prefix): the API caches nothing under 1024 tokens.
    document = "".join(f"Line {n}: the quick brown fox jumps over the lazy dog.\n" for n in range(200))
    result = run_exec(["-m", "sonnet", "--profile", "Compute five multiples of seven, one per block."],
                      input=document)
    assert result.status == 0, result.stderr
    rows = open_log().recent(STEPS)
    assert len({row["conversation_id"] for row in rows}) == 1
    return rows, result.stderr


def test_six_step_exec_reads_the_prefix_from_cache_and_full_rate_input_falls(anthropic_env, monkeypatch):
    cached_rows, profile = six_step_task(anthropic_env)
    markers = [json.dumps(request.body).count('"cache_control"') for request in anthropic_env.requests]
    assert all(1 <= count <= MAX_BREAKPOINTS for count in markers), markers
    assert cached_rows[0]["cache_read_tokens"] == 0 and cached_rows[0]["cache_write_tokens"] > 1024
    for row in cached_rows[1:]:
        # Every later step reads at least everything the step before it was sent.
        assert row["cache_read_tokens"] >= cached_rows[0]["cache_write_tokens"], row
    for earlier, later in zip(cached_rows, cached_rows[1:], strict=False):
        assert later["cache_read_tokens"] >= earlier["input_tokens"] - 5, (earlier, later)

    monkeypatch.setenv("LLMTOOLS_PROMPT_CACHE", "0")
    before = len(anthropic_env.requests)
    uncached_rows, _ = six_step_task(anthropic_env)
    assert all("cache_control" not in json.dumps(request.body)
               for request in anthropic_env.requests[before:])

    def billed_full(rows):  # tokens billed at the input price or above (cache writes: 1.25x)
        return sum(row["input_tokens"] - (row["cache_read_tokens"] or 0) for row in rows)

    on, off = billed_full(cached_rows), billed_full(uncached_rows)
    assert off == sum(row["input_tokens"] for row in uncached_rows)
    assert on <= 0.3 * off, (on, off)
    assert sum(row["cost_usd"] for row in cached_rows) < 0.5 * sum(row["cost_usd"] for row in uncached_rows)
    # --profile shows it: one line per step and the total, split by how the input is billed.
    steps = re.findall(r"profile: step (\d) model=claude-sonnet-4-6 .*cache_read=(\d+)tok", profile)
    assert [int(number) for number, _ in steps] == list(range(1, STEPS + 1))
    assert all(int(read) > 0 for _, read in steps[1:])
    total = re.search(r"profile: total calls=6 .*in=(\d+)tok \(full rate (\d+), cache read (\d+), "
                      r"cache write (\d+)\)", profile)
    assert total is not None, profile
    prompt, full_rate, read, written = map(int, total.groups())
    assert prompt == sum(row["input_tokens"] for row in cached_rows)
    assert full_rate + written == on and read > 0


def test_llm_continue_reads_the_earlier_turns_from_cache(anthropic_env):
    system = "You answer questions about this long handbook.\n" + "Rule: be brief. " * 400
    anthropic_env.script(Reply(text="First answer."), Reply(text="Second answer."))
    assert run_llm(["-s", system, "first question"]).status == 0
    result = run_llm(["-c", "--profile", "second question"])
    assert result.status == 0, result.stderr
    first, second = open_log().recent(2)
    assert first["cache_write_tokens"] > 1024 and second["cache_read_tokens"] >= first["cache_write_tokens"]
    assert re.search(r"cache_read=\d+tok cache_write=\d+tok cost=\$", result.stderr), result.stderr
    request = anthropic_env.requests[1].body
    assert request["system"][-1]["cache_control"] == {"type": "ephemeral"}
    assert request["messages"][-1]["content"][-1]["cache_control"] == {"type": "ephemeral"}
    meta = json.loads(run_llm(["-c", "-S", "third"]).stdout.splitlines()[-1])["meta"]
    assert meta["usage"]["cache_read_tokens"] > 0


def test_the_config_switch_turns_caching_off(anthropic_env, write_config):
    write_config("prompt_cache = false\n")
    assert run_llm(["-s", "x" * 8000, "question"]).status == 0
    assert "cache_control" not in json.dumps(anthropic_env.requests[0].body)
    row = open_log().recent(1)[0]
    assert row["cache_read_tokens"] == 0 and row["cache_write_tokens"] == 0


def test_openai_cached_tokens_are_reported_and_priced(openai_server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai-cache-test")
    monkeypatch.setenv("OPENAI_BASE_URL", openai_server.base_url)
    system = "Long instructions. " * 600
    openai_server.script(Reply(text="one", input_tokens=3000, output_tokens=5),
                         Reply(text="two", input_tokens=3100, output_tokens=5))
    assert run_llm(["-m", "gpt-4.1", "-s", system, "first"]).status == 0
    assert run_llm(["-m", "gpt-4.1", "-c", "second"]).status == 0
    first, second = open_log().recent(2)
    assert first["cache_read_tokens"] is None
    assert second["cache_read_tokens"] >= 2560 and second["cache_read_tokens"] % 128 == 0
    read = second["cache_read_tokens"]
    assert second["cost_usd"] == pytest.approx(((3100 - read) * 2.0 + read * 0.5 + 5 * 8.0) / 1e6)


def test_breakpoints_go_on_the_system_the_last_message_and_the_previous_user_turn():
    params = {"system": "instructions", "messages": [
        {"role": "user", "content": "task"}, {"role": "assistant", "content": "step"},
        {"role": "user", "content": [{"type": "text", "text": "result"}]}]}
    mark_cache_breakpoints(params)
    marked = [params["system"][-1]] + [message["content"][-1] for message in params["messages"]]
    assert ["cache_control" in block for block in marked] == [True, True, False, True]
    crowded = {"tools": [{"name": f"t{n}", "cache_control": {"type": "ephemeral"}} for n in range(2)],
               **params}
    for message in crowded["messages"]:
        for part in message["content"]:
            part.pop("cache_control", None)
    crowded["system"][-1].pop("cache_control")
    mark_cache_breakpoints(crowded)
    assert json.dumps(crowded).count("cache_control") == MAX_BREAKPOINTS


def test_usage_with_cache_counts_crosses_a_process_boundary_and_is_priced():
    usage = Usage(input_tokens=5000, output_tokens=40, cache_read_tokens=4000, cache_write_tokens=900)
    assert event_from_json(json.loads(json.dumps(event_to_json(usage)))) == usage
    cost = cost_usd(3.0, 15.0, 5000, 40, cache_read_tokens=4000, cache_write_tokens=900,
                    price_cache_read=0.3, price_cache_write=3.75)
    assert cost == pytest.approx((100 * 3.0 + 4000 * 0.3 + 900 * 3.75 + 40 * 15.0) / 1e6)


def test_an_existing_log_is_upgraded_in_place(llmtools_home):
    from llmtools.logs import SCHEMA
    from llmtools.statedirs import paths

    path = paths().log_db
    path.parent.mkdir(parents=True, exist_ok=True)
    old = sqlite3.connect(path)
    old.executescript(SCHEMA)
    old.execute("INSERT INTO responses (id, conversation_id, created, tool, model, messages, status)"
                " VALUES ('a', 'c', 'now', 'llm', 'echo', '[]', 'ok')")
    old.execute("PRAGMA user_version = 1")
    old.commit()
    old.close()
    store = open_log()
    response_id = store.start(conversation_id="c", tool="llm", model="echo", messages=[], prompt="p")
    store.finish(response_id, response="r", status="ok", cache_read_tokens=7, cache_write_tokens=3)
    rows = store.recent(None)
    assert [row["id"] for row in rows][0] == "a"
    assert (rows[-1]["cache_read_tokens"], rows[-1]["cache_write_tokens"]) == (7, 3)
    assert store._connect().execute("PRAGMA user_version").fetchone()[0] >= 2


def test_llm_logs_shows_cache_reads_and_writes(anthropic_env):
    system = "Long instructions. " * 400
    anthropic_env.script(Reply(text="one"), Reply(text="two"))
    assert run_llm(["-s", system, "first"]).status == 0
    assert run_llm(["-c", "second"]).status == 0
    shown = run_llm(["logs", "-n", "1"]).stdout
    assert re.search(r"cache \d+ read / \d+ written", shown), shown
