"""The llm-exec loop core: reading the model's stream, what the model is told, confirmation."""

from __future__ import annotations

import dataclasses
import json

import pytest

from llmtools import codeact
from llmtools.config import resolve_model
from llmtools.providers.script import requests_path
from llmtools.runtime.manager import RuntimeManager


def split(chunks: list[str]) -> tuple[codeact.HelpersSplitter, list[tuple[str, str]]]:
    splitter = codeact.HelpersSplitter()
    out = []
    for chunk in chunks:
        out += splitter.feed(chunk)
        if splitter.closed:
            break
    out += splitter.finish()
    return splitter, out


def joined(out, kind) -> str:
    return "".join(text for k, text in out if k == kind)


@pytest.mark.parametrize("size", [1, 2, 3, 5, 9, 100])
def test_tags_split_across_chunks_are_recognised(size):
    text = "Let me see <b>now</b>.\n<helpers>\nx = '<help'\n</helpers>\nignored tail"
    splitter, out = split([text[i:i + size] for i in range(0, len(text), size)])
    assert joined(out, "prose") == "Let me see <b>now</b>.\n"
    assert joined(out, "code") == "\nx = '<help'\n"
    assert splitter.closed
    assert splitter.assistant_text() == "Let me see <b>now</b>.\n<helpers>\nx = '<help'\n</helpers>"


def test_a_block_cut_by_the_providers_stop_sequence_is_closed_in_the_stack():
    splitter, _ = split(["Prose\n<helpers>\nx = 1\n"])
    assert splitter.code == "\nx = 1\n" and not splitter.closed
    assert splitter.assistant_text() == "Prose\n<helpers>\nx = 1\n</helpers>"


def test_a_reply_without_a_block_is_all_prose_even_if_it_ends_like_a_tag():
    splitter, out = split(["The answer is 4 <", "help"])
    assert splitter.code is None and joined(out, "prose") == "The answer is 4 <help"


def test_markdown_fences_inside_the_tags_are_dropped():
    assert codeact.clean_code("\n```python\nx = 1\n```\n") == "x = 1\n"
    assert codeact.clean_code("\nx = 1\n") == "x = 1\n"


def test_long_output_keeps_head_and_tail_and_says_it_was_cut():
    text = "".join(f"line {n}\n" for n in range(2000))
    cut = codeact.truncate_middle(text, 1000)
    assert cut.startswith("line 0\n") and cut.endswith("line 1999\n")
    assert "output truncated" in cut and len(cut) < 1200
    assert codeact.truncate_middle("short", 1000) == "short"


def test_an_error_tells_the_model_what_ran_what_did_not_and_the_variables():
    result = {
        "ok": False, "statements_total": 4, "restarted": False,
        "statements": [{"stdout": "a\n", "value": None, "results": []},
                       {"stdout": "", "value": "3", "results": []},
                       {"stdout": "", "value": None, "results": []}],
        "error": {"type": "KeyError", "message": "KeyError: 'b'", "statement": "d['b']", "index": 2,
                  "line": 5, "traceback": "Traceback (most recent call last):\nKeyError: 'b'",
                  "locals": [{"name": "d", "type": "dict", "repr": "{'a': 1}"}]},
    }
    text = codeact.format_result(result, 1000)
    assert text.startswith("a\n3\nError in statement 3 of 4 (line 5):\n    d['b']\n")
    assert "Statements 1-2 ran; their effects remain. Statement 4 did not run." in text
    assert "  d: dict = {'a': 1}" in text
    assert "continues from the failing statement" in text


def test_an_empty_block_result_says_so():
    result = {"ok": True, "statements": [{"stdout": "", "value": None, "results": []}], "error": None}
    assert codeact.format_result(result, 100) == "(no output; 1 statement ran)"


# --- the loop, with a scripted model and a real runtime -----------------------------------


@pytest.fixture
def runtimes(tmp_path):
    manager = RuntimeManager(snapshot_dir=tmp_path / "snapshots")
    yield manager
    manager.close()


def scripted(tmp_path, *replies):
    path = tmp_path / "replies.jsonl"
    path.write_text("".join(json.dumps(reply) + "\n" for reply in replies))
    return resolve_model(f"script:{path}"), path


def sent(path) -> list[dict]:
    sidecar = requests_path(path)
    return [json.loads(line) for line in sidecar.read_text().splitlines()]


def make_loop(spec, runtimes, tmp_path, confirm=None, **settings):
    doc, errors, _ = codeact.fetch_helpers_doc(runtimes, "t", 20)
    assert errors == []
    return codeact.CodeActLoop(
        spec, [{"role": "user", "content": "task"}], runtimes,
        codeact.Settings(thread_id="t", cwd=str(tmp_path), **settings),
        helpers_doc=doc, confirm=confirm)


def test_a_declined_block_is_not_run_and_the_model_is_told(tmp_path, runtimes):
    marker = tmp_path / "ran.txt"
    spec, path = scripted(tmp_path,
                          f"First.\n<helpers>\nwrite_file({str(marker)!r}, 'x')\n</helpers>",
                          "Second.\n<helpers>\nanswer = 6 * 7\nanswer\n</helpers>",
                          "It is 42.")
    asked = []

    def confirm(code: str) -> str:
        asked.append(code)
        return codeact.SKIP if len(asked) == 1 else codeact.RUN

    loop = make_loop(spec, runtimes, tmp_path, confirm=confirm)
    events = list(loop.run())
    assert asked == [f"write_file({str(marker)!r}, 'x')\n", "answer = 6 * 7\nanswer\n"]
    assert not marker.exists()
    skipped = [e for e in events if isinstance(e, codeact.BlockSkipped)]
    assert [(e.step, e.reason) for e in skipped] == [(1, "declined")]
    second_request = sent(path)[1]["messages"]
    assert codeact.DECLINED_NOTE in second_request[-1]["content"]
    assert sent(path)[2]["messages"][-1]["content"] == "<helpers_result>\n42\n</helpers_result>"
    assert loop.stop_reason == "answered"
    assert "".join(e.text for e in events if isinstance(e, codeact.Prose)) == "First.\nSecond.\nIt is 42."


def test_quitting_at_the_confirmation_stops_without_another_model_call(tmp_path, runtimes):
    spec, path = scripted(tmp_path, "<helpers>\nx = 1\n</helpers>", "never asked")
    loop = make_loop(spec, runtimes, tmp_path, confirm=lambda code: codeact.QUIT)
    events = list(loop.run())
    assert loop.stop_reason == "quit" and len(sent(path)) == 1
    assert isinstance(events[-1], codeact.BlockSkipped) and events[-1].reason == "quit"
    assert runtimes.evaluate("t", "x", timeout=20)["error"]["type"] == "NameError"


def test_a_reply_cut_off_by_the_token_limit_inside_a_block_is_not_run(tmp_path, runtimes):
    spec, path = scripted(tmp_path, {"text": "<helpers>\nx = [1,\n", "stop_reason": "max_tokens"},
                          "Sorry, done.")
    loop = make_loop(spec, runtimes, tmp_path)
    events = list(loop.run())
    assert [e.reason for e in events if isinstance(e, codeact.BlockSkipped)] == ["cut_off"]
    assert codeact.CUT_OFF_NOTE in sent(path)[1]["messages"][-1]["content"]
    assert loop.blocks_run == 0 and loop.stop_reason == "answered"


def test_the_system_prompt_documents_the_helpers_and_limits(tmp_path, runtimes):
    spec, path = scripted(tmp_path, "Nothing to run.")
    list(make_loop(spec, runtimes, tmp_path, max_steps=4, statement_timeout=7).run())
    request = sent(path)[0]
    system = request["messages"][0]
    assert system["role"] == "system" and request["stop"] == ["</helpers>"]
    for expected in ("<helpers>", "at most 7 seconds", "at most 4 blocks", "llm_call(values, instruction",
                     "llm_bind(value, function", "download(url: str)", "pdf(path_or_url: str)",
                     "read_file(path: str)", "write_file(path: str, content)", "result(value)",
                     f"The working directory is {tmp_path}"):
        assert expected in system["content"], expected


def test_helpers_call_the_model_the_caller_resolved_with_its_options(tmp_path, runtimes):
    # The worker runs in the daemon's environment, where the caller's model name (an alias
    # from its own config, say) may mean nothing: the helpers get the resolved spec.
    spec, path = scripted(tmp_path, "<helpers>\nllm_call('some text', 'summarise it')\n</helpers>",
                          "a summary", "Done.")
    spec = dataclasses.replace(spec, name="an-alias-only-the-caller-knows")
    loop = make_loop(spec, runtimes, tmp_path, max_tokens=123, temperature=0.5)
    list(loop.run())
    requests = sent(path)
    assert len(requests) == 3 and loop.stop_reason == "answered"
    assert requests[1]["max_tokens"] == 123 and requests[1]["temperature"] == 0.5
    assert requests[1]["messages"][-1]["content"] == "summarise it"
    assert requests[2]["messages"][-1]["content"] == "<helpers_result>\n'a summary'\n</helpers_result>"

