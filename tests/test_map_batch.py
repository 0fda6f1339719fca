"""llm-map --batch and --resume against loopback Anthropic Message Batches and OpenAI
Files + Batch servers, through the official SDKs."""

from __future__ import annotations

import json
import signal
import subprocess

import pytest

from tests.conftest import command_path
from tests.fakes.batch_servers import AnthropicBatchServer, OpenAIBatchServer
from tests.fakes.loopback import Reply
from tests.test_map import run_map

DOCUMENTS = "".join(json.dumps({"role": "user", "content": f"Planted FACT-{n} is here.", "meta": {"source": f"d{n}"}})
                    + "\n" for n in range(5))


@pytest.fixture
def openai_batches(monkeypatch):
    with OpenAIBatchServer() as server:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("LLMTOOLS_BATCH_POLL_INTERVAL", "0.02")
        yield server


@pytest.fixture
def anthropic_batches(monkeypatch):
    with AnthropicBatchServer() as server:
        monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.base_url)
        monkeypatch.setenv("LLMTOOLS_BATCH_POLL_INTERVAL", "0.02")
        yield server


def posts(server, path: str) -> list:
    return [r for r in server.requests if r.method == "POST" and r.path.split("?")[0] == path]


def test_openai_batch_maps_every_chunk_and_reduces_in_order(openai_batches, llmtools_home):
    server = openai_batches
    server.script(Reply(text="all five facts"))
    server.book.answer = lambda params: "seen " + json.dumps(params).split("FACT-")[1][0]
    ended = []

    def end_when_polled() -> None:
        server.book.wait_for_polls(2)
        server.end_batches()
        ended.append(True)

    import threading

    threading.Thread(target=end_when_polled, daemon=True).start()
    result = run_map(["-m", "gpt-4.1-mini", "--batch", "-S", "Which facts?"], DOCUMENTS)
    assert result.status == 0, result.stderr
    assert ended and result.stack()[-1]["content"] == "all five facts"
    assert "llm-map --resume batch_" in result.stderr
    [upload] = posts(server, "/v1/files")
    assert "purpose" in upload.body and upload.body.count('"custom_id"') == 5
    [created] = posts(server, "/v1/batches")
    assert created.body["endpoint"] == "/v1/chat/completions" and created.body["completion_window"] == "24h"
    reduce_call = posts(server, "/v1/chat/completions")[-1].body
    text = json.dumps(reduce_call["messages"])
    assert [text.index(f"seen {n}") for n in range(5)] == sorted(text.index(f"seen {n}") for n in range(5))
    assert not list((llmtools_home / "data" / "batches").iterdir())  # finished: nothing left to resume


def test_a_failed_batch_request_fails_the_run_unless_keep_going(openai_batches):
    server = openai_batches
    server.book.fail_ids = {"chunk-2"}
    server.script(Reply(text="four of five"))
    import threading

    threading.Thread(target=lambda: (server.book.wait_for_polls(1), server.end_batches()), daemon=True).start()
    result = run_map(["-m", "gpt-4.1-mini", "--batch", "Which facts?"], DOCUMENTS)
    assert result.status == 1 and "batch request 3 of 5 failed" in result.stderr
    batch_id = result.stderr.split("--resume ")[1].split()[0]
    result = run_map(["--resume", batch_id, "-k"])
    assert result.status == 0, result.stderr
    assert result.stdout.strip() == "four of five"
    assert len(posts(server, "/v1/batches")) == 1


def test_anthropic_batch_resumes_after_the_command_was_killed_mid_poll(anthropic_batches, llmtools_home):
    server = anthropic_batches
    process = subprocess.Popen([command_path("llm-map"), "-m", "claude-haiku-4-5", "--batch", "Which facts?"],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdin.write(DOCUMENTS.encode())
    process.stdin.close()
    server.book.wait_for_polls(3)  # submitted, and polling
    process.send_signal(signal.SIGKILL)
    assert process.wait(timeout=30) == -signal.SIGKILL
    note = process.stderr.read().decode()
    process.stdout.close()
    process.stderr.close()
    batch_id = note.split("llm-map --resume ")[1].split()[0]
    assert batch_id.startswith("msgbatch_")
    assert (llmtools_home / "data" / "batches" / f"{batch_id}.json").exists()

    server.end_batches()
    server.script(Reply(text="facts 0 to 4"))
    result = run_map(["--resume", batch_id, "-S"])
    assert result.status == 0, result.stderr
    final = result.stack()[-1]
    assert final["content"] == "facts 0 to 4" and final["meta"]["batch"] == batch_id
    assert len(posts(server, "/v1/messages/batches")) == 1  # resumed, not submitted again
    reduce_call = posts(server, "/v1/messages")[-1].body
    assert all(f"seen FACT-{n}" in json.dumps(reduce_call["messages"]) for n in range(5))


def test_resume_of_an_unknown_batch_is_a_usage_error():
    result = run_map(["--resume", "msgbatch_nope"])
    assert result.status == 2 and "no such batch" in result.stderr
