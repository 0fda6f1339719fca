"""`llm-exec` through its real entry wrapper, with scripted models and in-process runtimes.

conftest sets LLMTOOLS_NO_DAEMON=1, so every call here runs its own RuntimeManager; a
--thread carries over between calls through the thread's snapshot.
"""

from __future__ import annotations

import json
import time

import pytest

from llmtools import codeact
from llmtools.logs import open_log
from llmtools.providers.script import requests_path
from tests.helpers import run_command


def run_exec(args: list[str], input: str | bytes | None = None):
    from llmtools.cli.exec import exec_command
    from llmtools.inputs import group_exclusions

    return run_command(exec_command, args, input, prog_name="llm-exec", argv_filter=group_exclusions)


class Script:
    """A scripted model: its replies, and what it was sent."""

    def __init__(self, directory, *replies, name: str = "replies.jsonl") -> None:
        self.path = directory / name
        self.path.write_text("".join(json.dumps(reply) + "\n" for reply in replies))
        self.model = f"script:{self.path}"

    def requests(self) -> list[dict]:
        sidecar = requests_path(self.path)
        if not sidecar.exists():
            return []
        return [json.loads(line) for line in sidecar.read_text().splitlines()]

    def result_sent(self, call: int) -> str:
        """The last message of model call number `call` (from 0): a <helpers_result> turn."""
        return self.requests()[call]["messages"][-1]["content"]


def block(prose: str, code: str) -> str:
    return f"{prose}\n<helpers>\n{code}\n</helpers>"


def test_a_second_block_uses_a_variable_from_the_first(tmp_path):
    script = Script(tmp_path,
                    block("Let me compute.", "x = 6 * 7\nprint('x is', x)"),
                    block("Now add one.", "y = x + 1\ny"),
                    "The answer is 43.")
    result = run_exec(["-m", script.model, "What is 6*7+1?"])
    assert result.status == 0, result.stderr
    assert result.stdout == "Let me compute.\nNow add one.\nThe answer is 43.\n"
    assert "<helpers>\nx = 6 * 7\nprint('x is', x)\n</helpers>" in result.stderr
    assert "<helpers_result>\nx is 42\n</helpers_result>" in result.stderr
    assert script.result_sent(1) == "<helpers_result>\nx is 42\n</helpers_result>"
    assert script.result_sent(2) == "<helpers_result>\n43\n</helpers_result>"
    requests = script.requests()
    assert [request["stop"] for request in requests] == [["</helpers>"]] * 3
    assert [m["role"] for m in requests[2]["messages"]] == ["system", "user", "assistant", "user",
                                                            "assistant", "user"]
    assert requests[0]["messages"][1] == {"role": "user", "content": "What is 6*7+1?"}


def test_an_error_goes_to_the_model_which_rewrites_the_rest(tmp_path):
    script = Script(tmp_path,
                    block("Mean:", "data = [3, 1, 2]\ntotal = sum(data)\nmean = total / count\nprint(mean)"),
                    block("Fixing.", "mean = total / len(data)\nprint(mean)"),
                    "The mean is 2.0.")
    result = run_exec(["-m", script.model, "mean of 3 1 2"])
    assert result.status == 0, result.stderr
    told = script.result_sent(1)
    assert "Error in statement 3 of 4 (line 3):\n    mean = total / count\n" in told
    assert "NameError: name 'count' is not defined" in told
    assert "Statements 1-2 ran; their effects remain. Statement 4 did not run." in told
    assert "  data: list = [3, 1, 2]\n  total: int = 6" in told
    assert script.result_sent(2) == "<helpers_result>\n2.0\n</helpers_result>"
    assert result.stdout.endswith("The mean is 2.0.\n")


def test_a_statement_that_never_ends_is_stopped_at_the_timeout_and_variables_survive(tmp_path):
    script = Script(tmp_path,
                    block("Keep this.", "kept = 'safe'"),
                    block("Loop.", "while True:\n    pass"),
                    block("Check.", "kept"),
                    "Still safe.")
    started = time.monotonic()
    result = run_exec(["-m", script.model, "--statement-timeout", "0.5", "try"])
    assert result.status == 0, result.stderr
    assert time.monotonic() - started < 30
    told = script.result_sent(2)
    assert "Timeout in statement 1 of 1 (line 1): the statement was still running after 0.5 s" in told
    assert "while True:" in told
    assert script.result_sent(3) == "<helpers_result>\n'safe'\n</helpers_result>"


def test_threads_do_not_see_each_others_variables(tmp_path):
    one = Script(tmp_path, block("Set.", "secret = 'one'"), "Done.", name="one.jsonl")
    two = Script(tmp_path, block("Look.", "secret"), "Not there.", name="two.jsonl")
    assert run_exec(["-m", one.model, "--thread", "one", "set it"]).status == 0
    assert run_exec(["-m", two.model, "--thread", "two", "look"]).status == 0
    assert "NameError: name 'secret' is not defined" in two.result_sent(1)
    assert run_exec(["--thread", "one", "--eval", "secret"]).stdout == "one\n"


def test_eval_reaches_a_function_defined_in_an_earlier_call(tmp_path, monkeypatch):
    monkeypatch.setattr("llmtools.cli.exec._in_process_warned", False)  # warned once per process
    script = Script(tmp_path, block("Defining.", "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n"
                                                  "fib(10)"), "fib(10) is 55.")
    defined = run_exec(["-m", script.model, "--thread", "calc", "define fib"])
    assert defined.status == 0, defined.stderr
    assert "no daemon: thread 'calc' runs inside this process" in defined.stderr
    evaluated = run_exec(["--thread", "calc", "--eval", "fib(20)"])
    assert (evaluated.status, evaluated.stdout) == (0, "6765\n")
    assert run_exec(["--thread", "calc", "--eval", "'text'"]).stdout == "text\n"  # str, not repr
    assert run_exec(["--thread", "calc", "--eval", "['text']"]).stdout == "['text']\n"
    assert run_exec(["--thread", "calc", "--eval", "print('out')"]).stdout == "out\n"
    failed = run_exec(["--thread", "calc", "--eval", "fib(1) / 0"])
    assert failed.status == 1 and "llm-exec: error: ZeroDivisionError: division by zero" in failed.stderr


def test_result_values_reach_the_model_and_the_stack(tmp_path):
    script = Script(tmp_path, block("Result:", "result({'answer': 42})"), "42.")
    result = run_exec(["-m", script.model, "-S", "answer"])
    assert result.status == 0, result.stderr
    assert script.result_sent(1) == "<helpers_result>\nresult(): {'answer': 42}\n</helpers_result>"
    turn = result.stack()[2]
    assert turn["meta"]["results"] == [{"type": "dict", "text": "{'answer': 42}", "json": {"answer": 42}}]
    assert turn["meta"]["tool"] == "llm-exec" and turn["meta"]["ok"] is True


def test_long_output_is_truncated_for_the_model_with_a_note(tmp_path):
    script = Script(tmp_path, block("Print.", "for n in range(1000):\n    print('line', n)"), "Done.")
    assert run_exec(["-m", script.model, "--max-output", "1000", "print"]).status == 0
    told = script.result_sent(1)
    assert "line 0\n" in told and "line 999\n" in told
    assert "output truncated: " in told and "print less at once" in told
    assert 'read_output("out1", start, length)' in told  # the whole is kept (test_exec_outputs.py)
    assert len(told) < 1600


def test_max_steps_bounds_the_blocks_run(tmp_path):
    marker = tmp_path / "third.txt"
    script = Script(tmp_path,
                    block("One.", "n = 1"), block("Two.", "n += 1"),
                    block("Three.", f"write_file({str(marker)!r}, 'ran')"), "never asked")
    result = run_exec(["-m", script.model, "--max-steps", "2", "count"])
    assert result.status == 1
    assert "stopped: the model still wanted to run code after 2 blocks (--max-steps)" in result.stderr
    assert codeact.LAST_STEP_NOTE in script.result_sent(2)
    assert len(script.requests()) == 3 and not marker.exists()
    assert "block 3 not run (step limit)" in result.stderr


def test_failing_blocks_in_a_row_are_bounded(tmp_path):
    script = Script(tmp_path, block("a", "1/0"), block("b", "1/0"), "I could not do it.")
    result = run_exec(["-m", script.model, "--max-errors", "2", "divide"])
    assert result.status == 0, result.stderr
    assert "2 blocks in a row have failed" in script.result_sent(2)
    assert result.stdout.endswith("I could not do it.\n")


def test_the_stack_holds_the_whole_exchange_and_continues_it(tmp_path):
    script = Script(tmp_path, block("Computing.", "z = 2 ** 10\nz"), "It is 1024.", "Half is 512.")
    first = run_exec(["-m", script.model, "-S", "2**10?"])
    assert first.status == 0, first.stderr
    messages = first.stack()
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant"]
    assert messages[1]["content"] == "Computing.\n<helpers>\nz = 2 ** 10\nz\n</helpers>"
    assert messages[2]["content"] == "<helpers_result>\n1024\n</helpers_result>"
    assert messages[3]["content"] == "It is 1024." and messages[3]["meta"]["tool"] == "llm-exec"
    second = run_exec(["-m", script.model, "half of it?"], input=first.stdout)
    assert second.status == 0 and second.stdout == "Half is 512.\n"
    sent = script.requests()[2]["messages"]
    assert [m["content"] for m in sent[1:]] == [m["content"] for m in messages] + ["half of it?"]
    rows = open_log().recent(None)
    assert {row["tool"] for row in rows} == {"llm-exec"}
    assert len({row["conversation_id"] for row in rows}) == 1  # the stack carried the thread on


def test_a_provider_without_stop_support_is_cut_at_the_closing_tag(tmp_path):
    script = Script(tmp_path, {"text": "Look.\n<helpers>\nv = 5\n</helpers>\nI predict 5. RAMBLING",
                               "ignore_stop": True}, "It was 5.")
    result = run_exec(["-m", script.model, "-S", "v?"])
    assert result.status == 0
    assert "RAMBLING" not in result.stdout
    assert result.stack()[1]["content"] == "Look.\n<helpers>\nv = 5\n</helpers>"


def test_helpers_call_the_same_model_from_inside_the_runtime(tmp_path):
    script = Script(tmp_path,
                    block("Summarising.", "summary = llm_call('A long text about cats.', 'Summarise')\nprint(summary)"),
                    "Cats, briefly.",
                    block("Binding.", "def pay(to: str, amount: float):\n    return f'paid {amount:.2f} to {to}'\n"
                                      "llm_bind('Pay Ada twelve and a half', 'pay(to: str, amount: float)')"),
                    json.dumps({"arguments": {"to": "Ada", "amount": "12.5"}, "missing": [], "question": None}),
                    block("Listing.", "llm_list_bind('Ada, Grace', 'the names')"),
                    '["Ada", "Grace"]',
                    "Done.")
    result = run_exec(["-m", script.model, "use the helpers"])
    assert result.status == 0, result.stderr
    requests = script.requests()
    helper_call = requests[1]["messages"]
    assert [m["content"] for m in helper_call[1:]] == ["A long text about cats.", "Summarise"]
    assert requests[1]["stop"] is None  # a helper's call is a plain one
    assert script.result_sent(2) == "<helpers_result>\nCats, briefly.\n</helpers_result>"
    assert script.result_sent(4) == "<helpers_result>\n'paid 12.50 to Ada'\n</helpers_result>"
    assert script.result_sent(6) == "<helpers_result>\n['Ada', 'Grace']\n</helpers_result>"
    assert {row["tool"] for row in open_log().recent(None)} == {"llm-exec"}
    assert len(open_log().recent(None)) == 7


def test_user_helpers_from_config_are_callable_and_documented(tmp_path, write_config):
    module = tmp_path / "shouting.py"
    module.write_text('def shout(text: str) -> str:\n    """Upper-case text, loudly."""\n'
                      '    return text.upper() + "!"\n\ndef _private():\n    pass\n')
    write_config(f'[exec]\nhelpers = ["{module}", "no_such_module_here"]\n')
    script = Script(tmp_path, block("Shout.", "shout('hi')"), "HI!")
    result = run_exec(["-m", script.model, "shout"])
    assert result.status == 0, result.stderr
    system = script.requests()[0]["messages"][0]["content"]
    assert "shout(text: str) -> str\n    Upper-case text, loudly." in system
    assert "_private" not in system
    assert "helper module no_such_module_here: ModuleNotFoundError" in result.stderr
    assert script.result_sent(1) == "<helpers_result>\n'HI!'\n</helpers_result>"


def test_stdin_paths_and_context_are_given_to_the_model_as_llm_does(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("the notes\n")
    script = Script(tmp_path, "Read them.")
    result = run_exec(["-m", script.model, "-s", "Be brief.", "-p", str(notes), "-t", "ctx", "task"],
                      input="from stdin\n")
    assert result.status == 0, result.stderr
    messages = script.requests()[0]["messages"]
    assert messages[0]["role"] == "system" and "<helpers>" in messages[0]["content"]
    assert messages[1] == {"role": "system", "content": "Be brief."}
    contents = [m["content"] for m in messages[2:]]
    assert contents[:2] == ["from stdin\n", "the notes\n"] and contents[3:] == ["ctx", "task"]
    assert contents[2].startswith("(The input above is also in the runtime as `documents`")
    assert messages[3]["meta"]["source"] == str(notes)


def test_a_run_without_thread_leaves_no_runtime_behind(tmp_path, llmtools_home):
    script = Script(tmp_path, block("x", "x = 1"), "ok")
    assert run_exec(["-m", script.model, "go"]).status == 0
    assert list((llmtools_home / "data" / "runtime").iterdir()) == []


def test_reset_forgets_a_thread(tmp_path):
    script = Script(tmp_path, block("x", "x = 1"), "ok", block("y", "'x' in globals()"), "fresh")
    assert run_exec(["-m", script.model, "--thread", "r", "go"]).status == 0
    assert run_exec(["--thread", "r", "--eval", "x"]).stdout == "1\n"
    assert run_exec(["--thread", "r", "--reset"]).status == 0
    gone = run_exec(["--thread", "r", "--eval", "x"])
    assert gone.status == 1 and "NameError" in gone.stderr
    # With a task (here on stdin), --reset starts it on a fresh runtime.
    assert run_exec(["-m", script.model, "--thread", "r", "--reset"], input="a task\n").status == 0
    assert script.result_sent(3) == "<helpers_result>\nFalse\n</helpers_result>"


def test_running_out_of_scripted_replies_is_a_clear_failure(tmp_path):
    script = Script(tmp_path, block("x", "x = 1"))
    result = run_exec(["-m", script.model, "go"])
    assert result.status == 1
    assert "no replies left (all 1 used" in result.stderr and "Traceback" not in result.stderr


def test_quiet_hides_the_work_but_not_the_answer(tmp_path):
    script = Script(tmp_path, block("Work.", "print('noisy')"), "Answer.")
    result = run_exec(["-m", script.model, "-q", "go"])
    assert result.stdout == "Work.\nAnswer.\n"
    assert "noisy" not in result.stderr and "<helpers>" not in result.stderr


@pytest.mark.parametrize("args, message", [
    (["--eval", "1", "a task"], "--eval takes an expression and no task"),
    (["--reset"], "--reset needs --thread ID"),
])
def test_usage_errors(args, message):
    result = run_exec(args)
    assert result.status == 2 and message in result.stderr
