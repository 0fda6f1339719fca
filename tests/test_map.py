"""llm-map with the scripted model: order, concurrency, retries, --keep-going, --select, --each,
and `llm`'s overflow read in chunks instead of cut."""

from __future__ import annotations

import json
import random
import threading

import pytest

from llmtools.cli.map import command as map_command
from tests.helpers import run_command, run_llm


def run_map(args: list[str], input: str | bytes | None = None):
    return run_command(map_command, args, input, prog_name="llm-map")


def write_script(path, replies) -> str:
    path.write_text("".join(json.dumps(reply) + "\n" for reply in replies))
    return f"script:{path}"


def sent(path) -> list[dict]:
    """What the scripted model was sent, call by call (where the provider keeps it)."""
    from llmtools.providers.script import requests_path

    sidecar = requests_path(path)
    return [json.loads(line) for line in sidecar.read_text().splitlines()]


def user_text(call: dict) -> str:
    return "\n".join(m["content"] for m in call["messages"] if m["role"] == "user")


def facts_document(count: int, filler_lines: int = 30) -> str:
    """`count` sections, each filler with one planted fact FACT-n, one section per ~chunk."""
    rng = random.Random(7)
    words = "river stone market lantern harbor meadow copper violin orchard signal".split()
    sections = []
    for number in range(count):
        lines = [" ".join(rng.choice(words) for _ in range(9)) + "." for _ in range(filler_lines)]
        lines.insert(rng.randrange(len(lines)), f"Planted FACT-{number} is here.")
        sections.append("\n".join(lines))
    return "\n\n".join(sections)


@pytest.fixture
def no_backoff(monkeypatch):
    monkeypatch.setenv("LLMTOOLS_RETRY_BASE_DELAY", "0")


def test_map_reduce_keeps_stack_order_whatever_order_calls_finish(tmp_path, no_backoff):
    document = facts_document(12)
    rng = random.Random(3)
    replies = [{"text": "saw ", "quote": r"FACT-\d+", "delay_s": rng.uniform(0, 0.05)} for _ in range(40)]
    path = tmp_path / "replies.jsonl"
    model = write_script(path, replies[:-1] + [{"text": "final answer"}])
    chunks = run_map(["-m", model, "--strategy", "mapreduce", "--chunk-tokens", "128", "-j", "6",
                      "--select", "find"], document)  # --select with a big context: every chunk
    count = len(chunks.stack())
    model = write_script(path, replies[:count] + [{"text": "final answer"}])
    result = run_map(["-m", model, "--strategy", "mapreduce", "--chunk-tokens", "128", "-j", "6",
                      "-S", "Which facts are planted?"], document)
    assert result.status == 0, result.stderr
    assert result.stack()[-1]["content"] == "final answer"
    reduce_call = sent(path)[-1]
    listed = [line for line in user_text(reduce_call).splitlines() if line.startswith("saw FACT-")]
    # Every chunk's partial answer, in document order (overlap may repeat a fact in two chunks).
    numbers = [int(line.split("-")[1]) for line in listed]
    assert numbers == sorted(numbers) and set(numbers) == set(range(12))
    assert len(sent(path)) == count + 1


def test_concurrency_bound_is_never_exceeded(tmp_path, monkeypatch, no_backoff):
    from llmtools.providers.script import ScriptProvider

    active, peak, lock = [0], [0], threading.Lock()
    real = ScriptProvider.stream

    def counting(self, request):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        try:
            yield from real(self, request)
        finally:
            with lock:
                active[0] -= 1

    monkeypatch.setattr(ScriptProvider, "stream", counting)
    lines = "\n".join(f"item {n}" for n in range(30))
    model = write_script(tmp_path / "r.jsonl", [{"text": "ok", "delay_s": 0.03}] * 30)
    result = run_map(["-m", model, "--each", "-j", "3", "do it"], lines)
    assert result.status == 0, result.stderr
    assert peak[0] == 3  # reached, never passed


def two_documents() -> str:
    """A stack of two short documents: exactly two chunks, one fact in each."""
    return "".join(json.dumps({"role": "user", "content": f"Planted FACT-{n} is here.", "meta": {"source": f"d{n}"}})
                   + "\n" for n in range(2))


def test_a_chunk_failing_twice_then_succeeding_is_retried(tmp_path, no_backoff):
    document = two_documents()
    path = tmp_path / "r.jsonl"
    model = write_script(path, [{"error": "boom"}, {"error": "boom again"}, {"text": "one ", "quote": r"FACT-\d"},
                                {"text": "two ", "quote": r"FACT-\d"}, {"text": "both facts"}])
    result = run_map(["-m", model, "--strategy", "mapreduce", "--chunk-tokens", "400", "-j", "1",
                      "Which facts?"], document)
    assert result.status == 0, result.stderr
    assert result.stdout.strip() == "both facts"
    calls = sent(path)
    assert [user_text(c) for c in calls[:3]] == [user_text(calls[0])] * 3  # the same chunk, three times
    assert "one FACT-0" in user_text(calls[-1]) and "two FACT-1" in user_text(calls[-1])


def test_keep_going_reports_the_failed_chunk_and_answers_from_the_rest(tmp_path, no_backoff):
    document = two_documents()
    failing = [{"error": "down"}] * 3
    path = tmp_path / "r.jsonl"
    model = write_script(path, [*failing, {"text": "two ", "quote": r"FACT-\d"}, {"text": "from the rest"}])
    result = run_map(["-m", model, "--strategy", "mapreduce", "--chunk-tokens", "400", "-j", "1", "-k",
                      "Which facts?"], document)
    assert result.status == 0, result.stderr
    assert result.stdout.strip() == "from the rest"
    assert "call 1 of 2 failed after 3 attempts: " in result.stderr
    assert "two FACT-1" in user_text(sent(path)[-1]) and "FACT-0" not in user_text(sent(path)[-1])

    model = write_script(tmp_path / "s.jsonl", [*failing, "two", "never used"])
    result = run_map(["-m", model, "--strategy", "mapreduce", "--chunk-tokens", "400", "-j", "1",
                      "Which facts?"], document)
    assert result.status == 1 and result.stdout == ""
    assert "1 of 2 calls to model" in result.stderr and "--keep-going" in result.stderr


def test_select_returns_the_chunks_that_hold_the_planted_facts(tmp_path, write_config):
    write_config(f'[models.small]\nprovider = "script"\npath = "{tmp_path / "unused.jsonl"}"\n'
                 'context_size = 2200\n')
    filler = facts_document(40).replace("Planted FACT", "Ordinary NOTE")
    paragraphs = filler.split("\n\n")
    planted = {5: "The vault code is 4471.", 17: "Marguerite Okafor founded Zephyr Dynamics.",
               33: "The comet returns in 2061."}
    for position, fact in planted.items():
        paragraphs[position] += "\n" + fact
    result = run_map(["-m", "small", "--select", "--chunk-tokens", "128", "-S",
                      "What is the vault code, who founded Zephyr Dynamics, and when does the comet return?"],
                     "\n\n".join(paragraphs))
    assert result.status == 0, result.stderr
    chosen = result.stack()
    text = "\n".join(message["content"] for message in chosen)
    for fact in planted.values():
        assert fact in text
    assert len(chosen) < 15  # a selection, not everything
    indexes = [message["meta"]["chunk"] for message in chosen]
    assert indexes == sorted(indexes)


def test_each_over_100_lines_gives_100_answers_in_order(tmp_path, no_backoff):
    rng = random.Random(5)
    lines = "\n".join(f"line-{n} says hello" for n in range(100))
    model = write_script(tmp_path / "r.jsonl",
                         [{"text": "answer for ", "quote": r"line-\d+", "delay_s": rng.uniform(0, 0.01)}
                          for _ in range(100)])
    result = run_map(["-m", model, "--each", "-j", "8", "Say which line"], lines)
    assert result.status == 0, result.stderr
    assert result.stdout.splitlines() == [f"answer for line-{n}" for n in range(100)]


def test_an_overflowing_prompt_is_mapped_not_cut(tmp_path, write_config, no_backoff):
    path = tmp_path / "r.jsonl"
    write_config(f'[models.small]\nprovider = "script"\npath = "{path}"\ncontext_size = 2000\n')
    big = tmp_path / "big.txt"
    paragraphs = facts_document(30).replace("Planted FACT", "Ordinary NOTE").split("\n\n")
    paragraphs[21] += "\nThe vault code is 4471."
    big.write_text("\n\n".join(paragraphs))
    path.write_text(json.dumps("SOME") + "\n" + json.dumps("The code is 4471.") + "\n")
    result = run_llm(["-m", "small", "-p", str(big), "What is the vault code?"])
    assert result.status == 0, result.stderr
    assert result.stdout.strip() == "The code is 4471."
    assert "does not fit model small's 2000-token context; reading it in chunks" in result.stderr
    decide, final = sent(path)
    assert "Reply ALL or SOME" in user_text(decide)
    assert "The vault code is 4471." in user_text(final) and "characters cut here" not in user_text(final)
    assert len(user_text(final)) < len(big.read_text()) / 2


def test_no_map_sends_it_whole_and_strict_refuses(tmp_path, write_config):
    path = tmp_path / "r.jsonl"
    write_config(f'[models.small]\nprovider = "script"\npath = "{path}"\ncontext_size = 1000\n')
    big = tmp_path / "big.txt"
    big.write_text(facts_document(10))
    path.write_text(json.dumps("whole") + "\n")
    result = run_llm(["-m", "small", "--no-map", "-p", str(big), "Summarise"])
    assert (result.status, result.stdout.strip()) == (0, "whole")
    assert len(sent(path)) == 1
    result = run_llm(["-m", "small", "--strict", "-p", str(big), "Summarise"])
    assert result.status == 2 and "does not fit model small's 1000-token context (--strict)" in result.stderr
    assert len(sent(path)) == 1


def test_a_prompt_that_fits_is_not_counted_or_mapped(tmp_path, write_config):
    path = tmp_path / "r.jsonl"
    write_config(f'[models.small]\nprovider = "script"\npath = "{path}"\ncontext_size = 1000\n')
    path.write_text(json.dumps("fine") + "\n")
    result = run_llm(["-m", "small", "short question"])
    assert (result.status, result.stdout.strip(), result.stderr) == (0, "fine", "")


def test_partial_answers_too_long_for_one_call_are_combined_in_rounds(tmp_path, write_config, no_backoff):
    path = tmp_path / "r.jsonl"
    write_config(f'[models.small]\nprovider = "script"\npath = "{path}"\ncontext_size = 1200\n')
    documents = "".join(json.dumps({"role": "user", "content": f"Planted FACT-{n} is here."}) + "\n"
                        for n in range(4))
    long_partial = {"text": "partial " + "detail " * 250, "quote": r"FACT-\d"}
    path.write_text("".join(json.dumps(reply) + "\n" for reply in
                            [long_partial] * 4 + [{"text": "combined ", "quote": r"FACT-\d"}] * 2 + ["final"]))
    result = run_map(["-m", "small", "--strategy", "mapreduce", "-j", "1", "Which facts?"], documents)
    assert result.status == 0, result.stderr
    assert result.stdout.strip() == "final"
    calls = sent(path)
    assert len(calls) == 7
    first_round = [user_text(call) for call in calls[4:6]]
    assert ["FACT-0" in text and "FACT-1" in text for text in first_round] == [True, False]
    assert "FACT-2" in first_round[1] and "FACT-3" in first_round[1]
    final = user_text(calls[6])
    assert final.index("combined FACT-0") < final.index("combined FACT-2") and "detail" not in final


def test_help_and_version_import_nothing_heavy():
    import subprocess
    import sys

    from tests.test_llm_e2e import HEAVY_MODULES

    for args in (["--help"], ["--version"]):
        probe = (f"import sys; sys.argv = ['llm-map', *{args!r}]\n"
                 "from llmtools.cli.map import main\n"
                 "try:\n    main()\nexcept SystemExit:\n    pass\n"
                 f"heavy = [m for m in {HEAVY_MODULES!r} if m in sys.modules]\n"
                 "print('HEAVY', heavy, file=sys.stderr)")
        completed = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
        assert "HEAVY []" in completed.stderr, (args, completed.stderr)
