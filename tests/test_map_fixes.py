"""llm-map regressions: -p and -t are always content, and the system text reaches the answer
whatever the strategy (mapreduce, --batch, `llm`'s overflow)."""

from __future__ import annotations

import json

import pytest

from tests.fakes.loopback import Reply
from tests.helpers import run_llm
from tests.test_map import facts_document, run_map, sent, write_script
from tests.test_map_batch import DOCUMENTS, openai_batches, posts  # noqa: F401 (a fixture)


def system_text(call: dict) -> str:
    return "\n".join(m["content"] for m in call["messages"] if m["role"] == "system")


def test_text_given_with_t_after_a_file_is_content_not_dropped(tmp_path):
    document = tmp_path / "f.txt"
    document.write_text("The file's own sentence.\n")
    model = write_script(tmp_path / "unused.jsonl", [])
    result = run_map(["-m", model, "--select", "-p", str(document), "-t", "EXTRA CONTEXT NOTE", "x"])
    assert result.status == 0, result.stderr
    text = "\n".join(message["content"] for message in result.stack())
    assert "The file's own sentence." in text and "EXTRA CONTEXT NOTE" in text


def test_a_piped_stack_still_ends_with_its_question(tmp_path):
    stack = (json.dumps({"role": "user", "content": "Sourced text.", "meta": {"source": "a.txt"}}) + "\n"
             + json.dumps({"role": "user", "content": "the stack's question"}) + "\n")
    model = write_script(tmp_path / "unused.jsonl", [])
    result = run_map(["-m", model, "--select", "-t", "TYPED NOTE", "x"], stack)
    assert result.status == 0, result.stderr
    text = "\n".join(message["content"] for message in result.stack())
    assert "Sourced text." in text and "TYPED NOTE" in text and "the stack's question" not in text


def test_system_option_reaches_the_final_reduce_call(tmp_path):
    documents = "".join(json.dumps({"role": "user", "content": f"Planted FACT-{n} is here."}) + "\n"
                        for n in range(3))
    path = tmp_path / "r.jsonl"
    model = write_script(path, [{"text": "seen ", "quote": r"FACT-\d"}] * 3 + ["final"])
    result = run_map(["-m", model, "--strategy", "mapreduce", "-s", "ANSWER IN PIRATE SPEAK", "Which facts?"],
                     documents)
    assert (result.status, result.stdout.strip()) == (0, "final"), result.stderr
    calls = sent(path)
    assert "ANSWER IN PIRATE SPEAK" in system_text(calls[-1])
    assert all("ANSWER IN PIRATE SPEAK" not in system_text(call) for call in calls[:-1])


def test_the_stacks_system_text_reaches_the_overflow_reduce(tmp_path, write_config):
    path = tmp_path / "r.jsonl"
    write_config(f'[models.small]\nprovider = "script"\npath = "{path}"\ncontext_size = 2000\n')
    big = tmp_path / "big.txt"
    big.write_text(facts_document(30))
    path.write_text("".join(json.dumps(reply) + "\n" for reply in
                            ["ALL"] + [{"text": "seen ", "quote": r"FACT-\d+"}] * 60))
    result = run_llm(["-m", "small", "-s", "ANSWER IN PIRATE SPEAK", "-p", str(big), "List every fact"])
    assert result.status == 0, result.stderr
    calls = sent(path)
    assert "does not fit" in result.stderr and len(calls) > 3  # decide, map calls, reduce
    assert "ANSWER IN PIRATE SPEAK" in system_text(calls[-1])


def test_system_option_reaches_the_reduce_after_a_batch(openai_batches):
    import threading

    server = openai_batches
    server.script(Reply(text="all five facts"))
    threading.Thread(target=lambda: (server.book.wait_for_polls(1), server.end_batches()), daemon=True).start()
    result = run_map(["-m", "gpt-4.1-mini", "--batch", "-s", "ANSWER IN PIRATE SPEAK", "Which facts?"], DOCUMENTS)
    assert (result.status, result.stdout.strip()) == (0, "all five facts"), result.stderr
    reduce_call = posts(server, "/v1/chat/completions")[-1].body
    assert "ANSWER IN PIRATE SPEAK" in json.dumps(reduce_call["messages"])


@pytest.mark.parametrize("saved, problem", [
    ("[1, 2]", "a JSON list, not an object"),
    ('{"id": "b1", "model": "echo"}', "no instruction, chunks"),
    ('{"id": "b1", "model": "echo", "instruction": "x", "chunks": [], "colour": 1}', "unknown colour"),
    ('{"id": "b1", "model": "echo", "instruction": "x", "chunks": [{"index": 0}]}', "chunks must be"),
])
def test_a_damaged_batch_state_is_an_input_error_naming_the_file(llmtools_home, saved, problem):
    from llmtools.mapping.batch import batches_dir

    batches_dir().mkdir(parents=True, exist_ok=True)
    (batches_dir() / "b1.json").write_text(saved)
    result = run_map(["--resume", "b1"])
    assert result.status == 65, result.stderr
    [line] = result.stderr.strip().splitlines()
    assert str(batches_dir() / "b1.json") in line and problem in line


def test_select_chunks_as_the_answer_does_when_chunk_tokens_exceed_the_context(tmp_path, write_config):
    write_config(f'[models.small]\nprovider = "script"\npath = "{tmp_path / "unused.jsonl"}"\n'
                 'context_size = 1500\n')
    document = facts_document(12)
    result = run_map(["-m", "small", "--select", "--chunk-tokens", "4000", "-S", "Where is FACT-7?"], document)
    assert result.status == 0, result.stderr
    chosen = result.stack()
    assert chosen and len(chosen) < 12  # some chunks that fit, not one too big for any call
    assert "FACT-7" in "\n".join(message["content"] for message in chosen)


def test_resolving_the_model_leaves_the_job_as_given(monkeypatch):
    from llmtools.mapping.run_command import MapJob

    monkeypatch.setenv("LLMTOOLS_MAP_JOBS", "3")
    job = MapJob(instruction="x", messages=[], model="echo")
    job.spec()
    assert job.jobs is None and job.concurrency() == 3
    assert MapJob(instruction="x", messages=[], jobs=5).concurrency() == 5
