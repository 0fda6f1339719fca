"""The `script:PATH` model: queued replies, streamed, stop-aware, recorded, shared across processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from llmtools.config import resolve_model
from llmtools.errors import InputError, ProviderError
from llmtools.providers import load_provider
from llmtools.providers.base import Finished, Request, TextDelta
from llmtools.providers.script import cursor_path, requests_path
from tests.conftest import REPO
from tests.helpers import run_llm


def write_replies(path, *replies) -> str:
    path.write_text("".join(json.dumps(reply) + "\n" for reply in replies))
    return f"script:{path}"


def ask(model: str, text: str = "hi", stop=None) -> tuple[list, str | None]:
    provider = load_provider(resolve_model(model))
    events = list(provider.stream(Request(messages=[{"role": "user", "content": text}], stop=stop)))
    chunks = [e.text for e in events if isinstance(e, TextDelta)]
    finished = [e.stop_reason for e in events if isinstance(e, Finished)]
    return chunks, finished[0] if finished else None


def recorded(path) -> list[dict]:
    sidecar = requests_path(path)
    return [json.loads(line) for line in sidecar.read_text().splitlines()]


def test_each_call_takes_the_next_reply_streamed_in_chunks(tmp_path):
    path = tmp_path / "replies.jsonl"
    model = write_replies(path, "first reply, a little longer than one chunk", {"text": "second", "chunk": 2})
    chunks, reason = ask(model)
    assert "".join(chunks) == "first reply, a little longer than one chunk"
    assert len(chunks) == 3 and reason == "end_turn"
    chunks, _ = ask(model, "again")
    assert chunks == ["se", "co", "nd"]
    assert cursor_path(path).read_text() == "2"
    assert not (tmp_path / "replies.jsonl.cursor").exists()  # never beside the script
    calls = recorded(path)
    assert [call["index"] for call in calls] == [0, 1]
    assert calls[1]["messages"] == [{"role": "user", "content": "again"}]


def test_stop_strings_cut_the_reply_as_real_providers_do(tmp_path):
    path = tmp_path / "replies.jsonl"
    model = write_replies(path, "code <helpers>x</helpers> after", {"text": "a</helpers>b", "ignore_stop": True})
    chunks, reason = ask(model, stop=["</helpers>", "never"])
    assert "".join(chunks) == "code <helpers>x" and reason == "stop_sequence"
    chunks, reason = ask(model, stop=["</helpers>"])
    assert "".join(chunks) == "a</helpers>b" and reason == "end_turn"  # a provider without stop support
    assert recorded(path)[0]["stop"] == ["</helpers>", "never"]


def test_plain_text_scripts_separate_replies_with_percent_lines(tmp_path):
    path = tmp_path / "replies.txt"
    path.write_text("one\nline two\n%\n%\nthird\n")
    model = f"script:{path}"
    assert "".join(ask(model)[0]) == "one\nline two"
    assert "".join(ask(model)[0]) == ""
    assert "".join(ask(model)[0]) == "third"


def test_an_empty_queue_and_a_scripted_error_fail_clearly(tmp_path):
    path = tmp_path / "replies.jsonl"
    write_replies(path, {"error": "scripted failure"})
    failed = run_llm(["-m", f"script:{path}", "hi"])
    assert failed.status == 1 and "reply 1: scripted failure" in failed.stderr
    empty = run_llm(["-m", f"script:{path}", "hi"])
    assert empty.status == 1
    assert "no replies left (all 1 used" in empty.stderr and "Traceback" not in empty.stderr


def test_a_malformed_script_names_its_line(tmp_path):
    path = tmp_path / "replies.jsonl"
    path.write_text('"ok"\n{"text": 3}\n')
    with pytest.raises(InputError, match="line 2"):
        ask(f"script:{path}")


def test_the_model_name_is_resolved_to_an_absolute_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = resolve_model("script:replies.jsonl")
    assert spec.provider == "script" and spec.model_id == str(tmp_path / "replies.jsonl")
    assert resolve_model(spec.name).model_id == spec.model_id  # what the runtime worker resolves


def test_processes_share_one_queue_without_losing_or_repeating_a_reply(tmp_path):
    path = tmp_path / "replies.jsonl"
    count = 8
    model = write_replies(path, *[f"reply {n}" for n in range(count)])
    taker = ("import sys\n"
             "from llmtools.config import resolve_model\n"
             "from llmtools.providers import load_provider\n"
             "from llmtools.providers.base import Request, TextDelta\n"
             "provider = load_provider(resolve_model(sys.argv[1]))\n"
             "events = provider.stream(Request(messages=[{'role': 'user', 'content': 'x'}]))\n"
             "print(''.join(e.text for e in events if isinstance(e, TextDelta)))\n")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    processes = [subprocess.Popen([sys.executable, "-c", taker, model], stdout=subprocess.PIPE, env=env)
                 for _ in range(count)]
    taken = sorted(process.communicate(timeout=60)[0].decode().strip() for process in processes)
    assert taken == sorted(f"reply {n}" for n in range(count))
    assert sorted(call["index"] for call in recorded(path)) == list(range(count))
    with pytest.raises(ProviderError, match="no replies left"):
        ask(model)
