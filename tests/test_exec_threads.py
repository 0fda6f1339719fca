"""Threads that remember: `llm-exec --thread ID` continues the thread's conversation too.

The scripted model records what each call was sent (`providers.script.requests_path`), so these tests
assert on the turns the model receives. conftest sets LLMTOOLS_NO_DAEMON=1: the runtime
carries over through the thread's snapshot.
"""

from __future__ import annotations

import json
import os

from llmtools.logs import open_log
from tests.test_exec_cli import Script, block, run_exec


def texts(request: dict) -> list[tuple[str, str]]:
    return [(message["role"], message["content"] if isinstance(message["content"], str)
             else json.dumps(message["content"])) for message in request["messages"]]


def test_a_thread_sends_its_earlier_turns_and_new_starts_over_keeping_variables(tmp_path):
    script = Script(tmp_path,
                    block("Noting it.", "number = 41"), "I will remember 41.",
                    block("Adding one.", "number + 1"), "The number was 41; plus one is 42.",
                    block("Checking.", "number"), "A fresh conversation, but number is still 41.")
    first = run_exec(["-m", script.model, "--thread", "t", "remember the number 41"])
    assert first.status == 0, first.stderr
    second = run_exec(["-m", script.model, "--thread", "t", "what number? add one"])
    assert second.status == 0, second.stderr
    assert second.stdout.endswith("plus one is 42.\n")
    requests = script.requests()
    sent = texts(requests[2])
    # llm-exec's own system prompt once, then the whole earlier task, then the new one.
    assert [role for role, _ in sent].count("system") == 1 and sent[0][0] == "system"
    assert sent[1] == ("user", "remember the number 41")
    assert sent[2][0] == "assistant" and "number = 41" in sent[2][1]
    assert sent[3][0] == "user" and "<helpers_result>" in sent[3][1]
    assert sent[4] == ("assistant", "I will remember 41.")
    assert sent[5] == ("user", "what number? add one")
    # The first call of the second task starts with everything the last call of the first was sent.
    assert texts(requests[1])[1:] == sent[1:4]

    third = run_exec(["-m", script.model, "--thread", "t", "--new", "what is number?"])
    assert third.status == 0, third.stderr
    fresh = texts(script.requests()[4])
    assert [role for role, _ in fresh] == ["system", "user"]
    assert fresh[1] == ("user", "what is number?")
    assert script.result_sent(5) == "<helpers_result>\n41\n</helpers_result>"  # the variables stayed

    conversations = {row["conversation_id"] for row in open_log().recent(None)}
    assert len(conversations) == 2 and all(cid.startswith("thread:t:") for cid in conversations)


def test_threads_do_not_share_conversations_and_plain_runs_remember_nothing(tmp_path):
    script = Script(tmp_path, "one", "two", "three")
    assert run_exec(["-m", script.model, "--thread", "a", "task a"]).status == 0
    assert run_exec(["-m", script.model, "--thread", "b", "task b"]).status == 0
    assert run_exec(["-m", script.model, "task c"]).status == 0
    assert [texts(request)[1:] for request in script.requests()] == [
        [("user", "task a")], [("user", "task b")], [("user", "task c")]]


def test_continue_and_cid_work_as_in_llm(tmp_path):
    script = Script(tmp_path, "first answer", "second answer", "third answer")
    assert run_exec(["-m", script.model, "first task"]).status == 0
    assert run_exec(["-m", script.model, "-c", "second task"]).status == 0
    cid = open_log().recent(1)[0]["conversation_id"]
    assert run_exec(["-m", script.model, "--cid", cid[:8], "third task"]).status == 0
    sent = texts(script.requests()[2])
    assert [role for role, _ in sent].count("system") == 1
    assert sent[1:] == [("user", "first task"), ("assistant", "first answer"), ("user", "second task"),
                        ("assistant", "second answer"), ("user", "third task")]


def test_threads_lists_variables_last_use_and_size(tmp_path):
    script = Script(tmp_path, block("Setting.", "alpha = 1\nbeta = 'two'"), "Done.")
    assert run_exec(["-m", script.model, "--thread", "listed", "set two variables"]).status == 0
    listing = run_exec(["--threads"])
    assert listing.status == 0, listing.stderr
    [line] = listing.stdout.splitlines()
    assert line.startswith("listed\tlast used 20")
    assert "variables: alpha, beta" in line and "4 messages" in line


def test_eval_on_an_unknown_thread_says_so_instead_of_creating_it(tmp_path):
    result = run_exec(["--thread", "nosuch", "--eval", "1 + 1"])
    assert result.status == 2
    assert "no thread 'nosuch'" in result.stderr and "--threads" in result.stderr
    assert run_exec(["--threads"]).stdout == "no threads yet\n"


def test_new_needs_a_thread(tmp_path):
    result = run_exec(["-m", "echo", "--new", "task"])
    assert result.status == 2 and "--new needs --thread" in result.stderr


def test_echo_shows_what_would_be_sent_and_runs_nothing(tmp_path):
    result = run_exec(["-m", "echo", "--thread", "shown", "-S", "list the files"])
    assert result.status == 0, result.stderr
    assert "<helpers_result>" not in result.stderr
    stack = result.stack()
    assert [message["role"] for message in stack] == ["user", "assistant"]
    lines = [json.loads(line) for line in stack[-1]["content"].splitlines()]
    assert "<helpers>" in lines[0]["system"] and "read_file" in lines[0]["system"]
    assert lines[-1] == {"role": "user", "content": "list the files"}
    assert open_log().recent(None) == []  # a dry run: a thread's conversation stays as it was
    plain = run_exec(["-m", "echo", "what now?"])
    assert plain.status == 0 and '{"role": "user", "content": "what now?"}' in plain.stdout


def test_a_continued_thread_keeps_its_documents_whole(tmp_path):
    data = tmp_path / "big.csv"
    data.write_text("".join(f"{n},row-{n}\n" for n in range(5_000)))
    size = len(data.read_text())
    first = Script(tmp_path, block("Size.", "print(len(documents[0].text))"), "Done.", name="first.jsonl")
    assert run_exec(["-m", first.model, "--thread", "docs", "-p", str(data), "size?"]).status == 0
    assert first.result_sent(1) == f"<helpers_result>\n{size}\n</helpers_result>"
    again = Script(tmp_path, block("Again.", "print(len(documents), len(documents[0].text))"), "Done.",
                   name="again.jsonl")
    result = run_exec(["-m", again.model, "--thread", "docs", "and now?"])
    assert result.status == 0, result.stderr
    assert again.result_sent(1) == f"<helpers_result>\n1 {size}\n</helpers_result>"


def test_eval_after_a_run_with_inputs_keeps_the_worker_and_its_unpicklable_variables(tmp_path, monkeypatch):
    from llmtools.runtime.manager import RuntimeManager

    manager = RuntimeManager(snapshot_dir=tmp_path / "state")
    monkeypatch.setattr("llmtools.cli.exec.connect_runtimes", lambda thread: (manager, False))
    data = tmp_path / "data.csv"
    data.write_text("a,b\n1,2\n")
    try:
        script = Script(tmp_path, block("Counting.", "counter = (n for n in range(10))\nnext(counter)"), "Done.")
        assert run_exec(["-m", script.model, "--thread", "gen", "-p", str(data), "count"]).status == 0
        here = os.getcwd()
        monkeypatch.chdir(tmp_path)  # another directory
        evaluated = run_exec(["--thread", "gen", "--eval", "next(counter)"])
        assert (evaluated.status, evaluated.stdout) == (0, "1\n"), evaluated.stderr
        assert "restarted" not in evaluated.stderr
        monkeypatch.chdir(here)
        again = Script(tmp_path, block("More.", "next(counter)"), "Done.", name="again.jsonl")
        assert run_exec(["-m", again.model, "--thread", "gen", "more"]).status == 0  # fewer -p files
        assert again.result_sent(1) == "<helpers_result>\n2\n</helpers_result>"
    finally:
        manager.close()


def test_thread_completion_offers_threads_kept_in_their_directories():
    from llmtools.cli.options import complete_thread_ids
    from llmtools.runtime.manager import RuntimeManager

    with RuntimeManager() as manager:  # the data dir's runtime/: <id>.thread/snapshot
        for thread in ("calc", "calendar", "odd id!"):
            assert manager.execute(thread, "x = 1", timeout=20)["ok"]
    assert sorted(item.value for item in complete_thread_ids(None, None, "ca")) == ["calc", "calendar"]
    assert [item.value for item in complete_thread_ids(None, None, "odd")] == ["odd id!"]
