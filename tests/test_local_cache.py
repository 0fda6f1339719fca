"""A local model's KV cache across the steps of a thread and across `llm -c` turns.

llama-cpp-python's `Llama.generate` keeps the evaluated prompt and evaluates only what
follows the longest shared prefix; that hits only if each step's prompt renders (and
tokenizes) as the previous one plus the new turns. The reused tokens are reported as
cache reads. Speed figures: scripts/bench_cache.py.
"""

from __future__ import annotations

from llmtools import stack
from llmtools.codeact.feedback import result_message, system_prompt
from llmtools.config import resolve_model
from llmtools.logs import open_log
from llmtools.providers.base import Request, TextDelta, Usage
from llmtools.providers.llama_engine import LlamaEngine
from llmtools.providers.local import LocalProvider
from llmtools.runtime import helpers
from tests.fakes.llama_server import smollm2, smollm2_gguf  # noqa: F401  (fixtures)
from tests.helpers import run_llm


def thread_steps(count: int, helpers_doc: str | None = None) -> list[list[dict]]:
    """The messages of each step of an llm-exec thread, built as llmtools.codeact builds them."""
    doc = helpers.describe() if helpers_doc is None else helpers_doc
    system = stack.message("system", system_prompt(doc, statement_timeout=120, max_steps=10, cwd="/tmp"),
                           tool="llm-exec")
    messages = [system, stack.message("user", "Count the files.")]
    steps = [list(messages)]
    for step in range(1, count):
        messages += [{"role": "assistant", "content": f"Step {step}.\n<helpers>\nlen(files)\n</helpers>"},
                     result_message(f"{step * 10}\n", None, "t", step)]
        steps.append(list(messages))
    return steps


def test_each_steps_prompt_starts_with_the_whole_previous_prompt(smollm2):
    engine = LlamaEngine(resolve_model("local:smollm2"), smollm2)
    try:
        prompts = [engine._fit(Request(messages=messages))[1] for messages in thread_steps(4)]
    finally:
        engine.close()
    for earlier, later in zip(prompts, prompts[1:], strict=False):
        assert later[:len(earlier)] == earlier


def first_usage(events) -> Usage:
    return next(event for event in events if isinstance(event, Usage))


def test_the_worker_evaluates_only_the_new_suffix_and_not_with_caching_off(smollm2):
    spec = resolve_model("local:smollm2")
    spec.options["n_threads"] = 1  # two cores shared with other work: one thread is steadier
    provider = LocalProvider(spec)
    try:
        steps = thread_steps(3, helpers_doc="read_file(path) -> str: the text of a file")  # short: fast
        runs = [list(provider.stream(Request(messages=messages, max_tokens=4, temperature=0)))
                for messages in steps]
        usages = [first_usage(events) for events in runs]
        assert usages[0].cache_read_tokens == 0
        for earlier, later in zip(usages, usages[1:], strict=False):
            assert later.cache_read_tokens >= earlier.input_tokens, (earlier, later)
        assert all(any(isinstance(event, TextDelta) for event in events) for events in runs)
        again = list(provider.stream(Request(messages=steps[2], max_tokens=4, temperature=0, cache=False)))
        assert first_usage(again).cache_read_tokens == 0
    finally:
        provider.close()


def test_llm_continue_reuses_the_daemons_kv_cache(smollm2, monkeypatch):
    monkeypatch.delenv("LLMTOOLS_NO_DAEMON")
    first = run_llm(["-m", "local:smollm2", "--max-tokens", "6", "--temperature", "0", "Name a fruit."])
    assert first.status == 0, first.stderr
    second = run_llm(["-m", "local:smollm2", "-c", "--max-tokens", "6", "--temperature", "0", "--profile",
                      "And a vegetable?"])
    assert second.status == 0, second.stderr
    earlier, later = open_log().recent(2)
    assert later["cache_read_tokens"] >= earlier["input_tokens"], (earlier, later)
    assert f"cache_read={later['cache_read_tokens']}tok" in second.stderr
