"""`llm chat` as a person uses it: a real process on a real pseudo-terminal (pexpect)."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
import textwrap

import pexpect
import pytest

from llmtools.chat.expand import screen_output
from llmtools.errors import UsageError
from llmtools.logs import new_id, open_log
from llmtools.runtime import sandbox
from tests.conftest import command_path
from tests.fakes import CutMidStream
from tests.helpers import run_llm, run_process
from tests.test_terminal import openai_on_loopback  # noqa: F401  (a fixture)

LIMIT_S = 60
# prompt_toolkit turns bracketed paste on each time it starts reading a line: the prompt is up.
# (The prompt's "> " itself is drawn as ">" and a cursor move.)
PROMPT = "\x1b[?2004h"


class Chat:
    """One `llm chat` on a pty: type lines, read what appears, leave."""

    def __init__(self, args: list[str], **env: str) -> None:
        environment = {name: value for name, value in os.environ.items() if name != "NO_COLOR"}
        # The pty answers no cursor-position queries; prompt_toolkit need not ask.
        environment.update({"TERM": "xterm-256color", "PROMPT_TOOLKIT_NO_CPR": "1", "NO_COLOR": "1", **env})
        self.child = pexpect.spawn(command_path("llm"), ["chat", *args], env=environment,
                                   encoding="utf-8", dimensions=(40, 200), timeout=LIMIT_S)
        self.child.expect_exact("Ctrl-D to leave")
        self.greeting = self.child.before
        self.wait_for_prompt()

    def wait_for_prompt(self) -> None:
        self.child.expect_exact(PROMPT)
        self.at_prompt = True

    def type(self, text: str) -> None:
        self.child.send(text + "\r")  # Enter; "\n" would be Ctrl-J, which adds a line
        self.at_prompt = False

    def expect(self, text: str) -> str:
        self.child.expect_exact(text)
        return self.child.before

    def ask(self, text: str, answer: str) -> None:
        self.type(text)
        self.expect(answer)
        self.wait_for_prompt()

    def leave(self) -> int:
        # Ctrl-D typed while an answer still prints reaches no prompt: wait for one.
        if not self.at_prompt:
            self.wait_for_prompt()
        self.child.sendcontrol("d")
        self.child.expect(pexpect.EOF)
        self.child.close()
        return self.child.exitstatus

    @property
    def pipe(self) -> str:
        return re.search(r"pipe: (\S+);", self.greeting).group(1)


def replies(tmp_path, *texts: str) -> str:
    path = tmp_path / "replies.jsonl"
    path.write_text("".join(json.dumps(text) + "\n" for text in texts))
    return f"script:{path}"


def echo_turns(text: str) -> list[dict]:
    """The turns the echo model was sent, from its answer (one JSON object a line)."""
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_two_turns_are_logged_as_they_happen_and_llm_c_continues_them(tmp_path):
    chat = Chat(["-m", replies(tmp_path, "Paris is the capital.", "About two million people.")])
    chat.ask("capital of France?", "Paris is the capital.")
    [row] = open_log().recent(None)  # logged before the session ends
    assert row["status"] == "ok" and row["tool"] == "llm chat"
    chat.ask("how many live there?", "About two million people.")
    assert chat.leave() == 0
    rows = open_log().recent(None)
    assert len(rows) == 2 and rows[0]["conversation_id"] == rows[1]["conversation_id"]
    continued = run_llm(["-m", "echo", "-c", "and in 1900?"])
    assert [turn["content"] for turn in echo_turns(continued.stdout)] == [
        "capital of France?", "Paris is the capital.", "how many live there?", "About two million people.",
        "and in 1900?"]


def test_chat_c_resumes_the_last_conversation(tmp_path):
    run_llm(["-m", "echo", "-s", "be brief", "earlier question"])
    chat = Chat(["-c", "-m", replies(tmp_path, "resumed answer")])
    assert "continuing conversation" in chat.greeting
    chat.ask("later question", "resumed answer")
    assert chat.leave() == 0
    rows = open_log().recent(None)
    assert len({row["conversation_id"] for row in rows}) == 1
    sent = json.loads(rows[-1]["messages"])
    assert [msg["role"] for msg in sent] == ["system", "user", "assistant", "user"]


def test_ctrl_c_cancels_the_answer_and_keeps_the_thread(openai_on_loopback):  # noqa: F811
    openai_on_loopback.script(CutMidStream(text_before_cut="The first half of an ans", chunks=4, hold=True))
    chat = Chat(["-m", "gpt-4.1"])
    chat.type("tell me a long story")
    chat.expect("The first half of an ans")
    chat.child.sendintr()
    chat.expect("answer cancelled")
    chat.wait_for_prompt()
    [row] = open_log().recent(None)
    assert row["status"] == "interrupted" and row["response"] == "The first half of an ans"
    chat.type("/model echo")
    chat.expect("model: echo")
    chat.type("go on")
    chat.expect('"content": "go on"')
    assert chat.leave() == 0
    rows = open_log().recent(None)
    sent = [msg["content"] for msg in json.loads(rows[-1]["messages"])]
    assert sent == ["tell me a long story", "The first half of an ans", "go on"]
    assert rows[-1]["model"] == "echo" and rows[-1]["conversation_id"] == rows[0]["conversation_id"]


def test_what_is_written_to_the_pipe_joins_the_next_turn(tmp_path):
    chat = Chat(["-m", "echo"])
    pipe = chat.pipe
    assert stat.S_ISFIFO(os.stat(pipe).st_mode) and stat.S_IMODE(os.stat(pipe).st_mode) == 0o600
    message = {"role": "user", "content": "fetched page text", "meta": {"source": "https://example.test/"}}
    subprocess.run(["/bin/sh", "-c", 'printf "%s\\n" "$1" > "$0"', pipe, json.dumps(message)],
                   check=True, timeout=LIMIT_S)
    chat.expect("from https://example.test/ joined the thread")
    chat.type("summarise it")
    # echo shows the turns after merging: the piped message and the question are one user turn
    answer = chat.expect('summarise it"}')
    assert "fetched page text" in answer
    assert chat.leave() == 0
    assert not os.path.exists(pipe)


def test_child_shells_see_the_pipe_and_substitution_runs_commands(tmp_path):
    chat = Chat(["-m", "echo"])
    chat.type("pipe is $(echo $LLM_PIPE) and sum is $(expr 40 + 2)")
    chat.expect(f'"content": "pipe is {chat.pipe} and sum is 42"')
    assert chat.leave() == 0


def test_save_writes_a_stack_or_markdown(tmp_path):
    chat = Chat(["-m", replies(tmp_path, "An answer with `code`.")])
    chat.ask("a question", "An answer with `code`.")
    chat.type(f"/save {tmp_path / 'thread.jsonl'}")
    chat.expect("saved 2 messages")
    chat.type(f"/save {tmp_path / 'thread.md'}")
    chat.expect("saved 2 messages")
    assert chat.leave() == 0
    saved = [json.loads(line) for line in (tmp_path / "thread.jsonl").read_text().splitlines()]
    assert [(msg["role"], msg["content"]) for msg in saved] == [
        ("user", "a question"), ("assistant", "An answer with `code`.")]
    assert saved[1]["meta"]["model"].startswith("script:")
    assert (tmp_path / "thread.md").read_text() == (
        "## User\n\na question\n\n## Assistant\n\nAn answer with `code`.\n")


def editor_script(tmp_path, name: str, body: str) -> str:
    path = tmp_path / name
    path.write_text(f"#!{sys.executable}\nimport sys\npath = sys.argv[1]\n" + textwrap.dedent(body))
    path.chmod(0o755)
    return str(path)


def test_edit_composes_the_next_message_in_the_editor(tmp_path):
    editor = editor_script(tmp_path, "compose", """
        open(path, "w").write("composed in the editor\\nover two lines\\n")
    """)
    chat = Chat(["-m", "echo"], EDITOR=editor)
    chat.type("/edit")
    chat.expect('"content": "composed in the editor\\nover two lines"')
    assert chat.leave() == 0


def test_thread_edit_rereads_the_thread_and_rejects_a_broken_line(tmp_path):
    fixer = editor_script(tmp_path, "fix", """
        import json
        lines = [json.loads(line) for line in open(path)]
        lines[1]["content"] = "an answer, corrected"
        open(path, "w").write("".join(json.dumps(line) + "\\n" for line in lines))
    """)
    breaker = editor_script(tmp_path, "break", """
        text = open(path).read().splitlines()
        text[1] = '{"role": "assistant", "content": '
        open(path, "w").write("\\n".join(text) + "\\n")
    """)
    chat = Chat(["-m", replies(tmp_path, "an answer, wrong")], EDITOR=fixer)
    chat.ask("question", "an answer, wrong")
    chat.type("/thread-edit")
    chat.expect("thread now has 2 messages")
    chat.type(f"/save {tmp_path / 'fixed.jsonl'}")
    chat.expect("saved")
    assert chat.leave() == 0
    fixed = [json.loads(line)["content"] for line in (tmp_path / "fixed.jsonl").read_text().splitlines()]
    assert fixed == ["question", "an answer, corrected"]

    chat = Chat(["-c", "-m", "echo"], EDITOR=breaker)
    chat.type("/thread-edit")
    chat.expect("error: the edited thread line 2: not valid JSON")
    chat.type("after")  # the thread is as it was
    answer = chat.expect('"content": "after"')
    assert "an answer, wrong" in answer  # the log holds what the model was sent and said
    assert chat.leave() == 0


def test_history_is_recalled_in_a_second_session(tmp_path):
    chat = Chat(["-m", "echo"])
    chat.ask("a line worth remembering", '"content": "a line worth remembering"')
    chat.ask("something else", '"content": "something else"')
    assert chat.leave() == 0
    chat = Chat(["-m", "echo"])
    chat.child.sendcontrol("r")
    chat.child.send("worth")
    chat.expect("remembering")  # (the match is shown with "worth" highlighted)
    chat.child.send("\r")  # accept the search
    chat.type("")  # and send it
    chat.expect('"content": "a line worth remembering"')
    assert chat.leave() == 0


def test_help_and_copy_without_a_clipboard(tmp_path):
    chat = Chat(["-m", replies(tmp_path, "Run this:\n\n```sh\necho copied-block\n```\n")],
                DISPLAY="", WAYLAND_DISPLAY="")
    chat.type("/help")
    chat.expect("/thread-edit")
    chat.ask("how?", "Run this:")
    chat.type("/code 1")
    chat.expect("echo copied-block")
    chat.type("/code 2")
    chat.expect("error: the last answer has 1 code block")
    assert chat.leave() == 0


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["-m", "echo", "hi"]])
def test_plain_llm_does_not_import_prompt_toolkit(args):
    probe = ("import sys\nsys.argv[0] = 'llm'\nfrom llmtools.cli.llm import main\n"
             "try:\n    main()\nexcept SystemExit:\n    pass\n"
             "print('HEAVY', sorted(m for m in ('prompt_toolkit', 'pyte', 'pexpect') if m in sys.modules),"
             " file=sys.stderr)")
    completed = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True,
                               timeout=LIMIT_S)
    assert "HEAVY []" in completed.stderr


def test_alt_enter_and_ctrl_j_add_lines_to_one_message():
    chat = Chat(["-m", "echo"])
    chat.child.send("line one\x1b\rline two")
    chat.child.sendcontrol("j")
    chat.type("line three")
    chat.expect('"content": "line one\\nline two\\nline three"')
    assert chat.leave() == 0


def test_exec_and_eval_share_the_chat_runtime_and_lines_may_come_from_a_pipe(tmp_path):
    # stdin not a terminal: one message or command a line, no prompt_toolkit.
    code = "def double(x):\n    return 2 * x\nprint(double(21))\n"
    model = replies(tmp_path, f"Defining it.\n<helpers>\n{code}</helpers>", "The answer is 42.")
    result = run_process("llm", ["chat", "--no-pipe", "-m", model],
                         input="/exec define double\n/eval double(5)\n/thread\n", timeout=LIMIT_S)
    assert result.status == 0, result.stderr
    assert result.stdout.startswith("Defining it.\nThe answer is 42.\n10\n")
    assert "<helpers_result>\n42\n</helpers_result>" in result.stdout  # /thread shows the exec turns
    rows = open_log().recent(None)
    assert [row["tool"] for row in rows] == ["llm-exec", "llm-exec"]
    assert len({row["conversation_id"] for row in rows}) == 1


def test_ctrl_e_opens_the_typed_text_in_the_editor_and_sends_it(tmp_path):
    editor = editor_script(tmp_path, "append", """
        text = open(path).read().rstrip("\\n")
        open(path, "w").write(text + ", finished in the editor\\n")
    """)
    chat = Chat(["-m", "echo"], EDITOR=editor)
    chat.child.send("a draft")
    chat.child.sendcontrol("e")
    chat.at_prompt = False  # the editor's text is sent when it exits
    chat.expect('"content": "a draft, finished in the editor"')
    assert chat.leave() == 0


def test_tab_completes_slash_commands(tmp_path):
    chat = Chat(["-m", "echo"])
    chat.child.send("/sa\t")
    chat.expect("/save")
    chat.type(f" {tmp_path / 'completed.jsonl'}")
    chat.expect("saved 0 messages")
    assert chat.leave() == 0
    assert (tmp_path / "completed.jsonl").exists()


def test_paths_system_and_new_thread_from_a_piped_session(tmp_path):
    notes = tmp_path / "notes.md"
    notes.write_text("the notes say 17\n")
    extra = tmp_path / "extra.txt"
    extra.write_text("extra file text\n")
    lines = ["first", f"/p {extra}", "/system be terse", "second", "/new", "third", "/thread"]
    result = run_process("llm", ["chat", "--no-pipe", "-m", "echo", "-p", str(notes)],
                         input="\n".join(lines) + "\n", timeout=LIMIT_S)
    assert result.status == 0, result.stderr
    rows = open_log().recent(None)
    sent = [json.loads(row["messages"]) for row in rows]
    assert "the notes say 17" in sent[0][0]["content"] and sent[0][-1]["content"] == "first"
    assert sent[1][0] == {"role": "system", "content": "be terse"}
    assert any("extra file text" in stack_text(msg) for msg in sent[1])
    assert [msg["content"] for msg in sent[2]] == ["be terse", "third"]  # /new keeps the system prompt
    assert rows[0]["conversation_id"] == rows[1]["conversation_id"] != rows[2]["conversation_id"]
    assert "1 message (16 chars) from" in result.stderr and "system: be terse" in result.stderr


def stack_text(msg: dict) -> str:
    content = msg["content"]
    return content if isinstance(content, str) else "".join(part.get("text", "") for part in content)


def test_double_dollar_substitutes_a_programs_screen(tmp_path):
    app = tmp_path / "tui.py"
    app.write_text("import sys\nsys.stdout.write('\\x1b[2J\\x1b[1;1Hdraft\\x1b[1;1HFINAL frame')\nsys.stdout.flush()\n"
                   "sys.stdin.read()\n")
    result = run_process("llm", ["chat", "--no-pipe", "-m", "echo"],
                         input=f"screen: $$({sys.executable} {app}) and $(echo shell)\n", timeout=LIMIT_S)
    assert result.status == 0, result.stderr
    [row] = open_log().recent(None)
    assert row["prompt"] == "screen: FINAL frame and shell"



@pytest.mark.skipif(sandbox.bwrap_problem(sandbox.find_bwrap()) is not None,
                    reason="bubblewrap cannot confine here")
def test_exec_in_chat_runs_under_the_llm_exec_sandbox(tmp_path):
    # /exec is model code like any llm-exec block: the same default confinement applies
    # (its own PID namespace, so the worker is PID 1; no provider key in its environment).
    code = "import os\nprint(os.getpid(), 'OPENAI_API_KEY' in os.environ)\n"
    model = replies(tmp_path, f"Checking.\n<helpers>\n{code}</helpers>", "Done.")
    result = run_process("llm", ["chat", "--no-pipe", "-m", model], input="/exec look around\n",
                         timeout=LIMIT_S, env={"OPENAI_API_KEY": "sk-chat-secret"})
    assert result.status == 0, result.stderr
    assert "unconfined" not in result.stderr
    sent = json.loads(open_log().recent(None)[-1]["messages"])
    assert "<helpers_result>\n1 False\n</helpers_result>" in sent[-1]["content"]


def test_an_unbalanced_quote_is_one_line_and_the_chat_goes_on(tmp_path):
    lines = ['/p "notes.md', "still here"]
    result = run_process("llm", ["chat", "--no-pipe", "-m", "echo"],
                         input="\n".join(lines) + "\n", timeout=LIMIT_S)
    assert result.status == 0, result.stderr
    assert "internal error" not in result.stderr
    assert "/p: No closing quotation" in result.stderr
    [row] = open_log().recent(None)
    assert row["prompt"] == "still here"


def test_a_screen_command_with_an_unbalanced_quote_is_a_usage_error():
    # expand() finds the closing parenthesis quote-aware; screen_output is its own entry point too.
    with pytest.raises(UsageError, match=r"^\$\$\(echo 'half\): No closing quotation"):
        screen_output("echo 'half")


def test_chat_c_keeps_the_threads_options_and_says_when_m_changes_the_model(tmp_path):
    run_llm(["-m", "echo", "--temperature", "0.3", "--max-tokens", "50", "first"])
    kept = run_process("llm", ["chat", "--no-pipe", "-c"], input="second\n", timeout=LIMIT_S)
    assert kept.status == 0, kept.stderr
    assert '{"options": {"max_tokens": 50, "temperature": 0.3}}' in kept.stdout
    assert "was held with" not in kept.stderr
    changed = run_process("llm", ["chat", "--no-pipe", "-c", "--temperature", "1", "-m", replies(tmp_path, "ok")],
                          input="third\n", timeout=LIMIT_S)
    assert changed.status == 0, changed.stderr
    assert "was held with echo; continuing with script:" in changed.stderr
    newest = json.loads(open_log().recent(None)[-1]["meta"])
    assert newest["options"] == {"max_tokens": 50, "temperature": 1.0}


def test_chat_c_on_a_thread_whose_model_is_gone_says_to_choose_one():
    store = open_log()
    store.start(conversation_id="c0ffee00", tool="llm", model="no-such-model-anymore",
                messages=[{"role": "user", "content": "hi"}], prompt="hi")
    store.close()
    result = run_process("llm", ["chat", "--no-pipe", "--cid", "c0ffee"], input="again\n", timeout=LIMIT_S)
    assert result.status == 2
    assert "was held with no-such-model-anymore, which is unknown now; choose a model with -m" in result.stderr


def test_a_chat_conversation_id_starts_with_its_random_part():
    # Time-first ids of conversations begun the same day share their first characters,
    # so a short --cid prefix would name many of them.
    before = new_id()[:6]
    result = run_process("llm", ["chat", "--no-pipe", "-m", "echo"], input="hello\n", timeout=LIMIT_S)
    assert result.status == 0, result.stderr
    [row] = open_log().recent(None)
    assert row["conversation_id"][:6] not in (before, new_id()[:6])
