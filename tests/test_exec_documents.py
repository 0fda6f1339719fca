"""Data piped into llm-exec (stdin, -p) is `documents[i]` in the runtime, with only a preview
of a large one in the prompt."""

from __future__ import annotations

from llmtools.codeact.documents import INLINE_MAX_CHARS, PREVIEW_CHARS, split_inputs
from tests.test_exec_cli import Script, block, run_exec


def test_large_stdin_is_a_document_and_only_a_preview_is_sent(tmp_path):
    rows = "".join(f"{n},item-{n},{n * 3}\n" for n in range(20_000))  # ~400 KB of CSV
    script = Script(tmp_path,
                    block("Counting.", "print(len(documents), documents[0].source, "
                          "len(documents[0].text.splitlines()), documents[0].text.split(',')[1])"),
                    "There are 20000 rows.")
    result = run_exec(["-m", script.model, "How many rows?"], input=rows)
    assert result.status == 0, result.stderr
    assert script.result_sent(1) == "<helpers_result>\n1 stdin 20000 item-0\n</helpers_result>"
    first = script.requests()[0]["messages"]
    sent = "".join(str(message["content"]) for message in first)
    assert len(sent) < len(rows) // 10  # the prompt did not get the whole CSV
    assert "20,000 lines" in sent and "documents[0].text" in sent
    assert "0,item-0,0" in sent and "19999,item-19999" not in sent


def test_small_p_files_are_sent_whole_and_are_documents_too(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("alpha\nbeta\n")
    script = Script(tmp_path, block("Reading.", "print(documents[0].source.endswith('notes.txt'), "
                                                "documents[0].text == open(documents[0].source).read())"),
                    "Done.")
    result = run_exec(["-m", script.model, "-p", str(notes), "Check the file"])
    assert result.status == 0, result.stderr
    assert script.result_sent(1) == "<helpers_result>\nTrue True\n</helpers_result>"
    sent = script.requests()[0]["messages"]
    assert any(message["content"] == "alpha\nbeta\n" for message in sent)
    assert any("`documents`" in str(message["content"]) and "notes.txt" in str(message["content"])
               for message in sent)


def test_documents_are_sent_to_the_runtime_once(tmp_path):
    script = Script(tmp_path, block("One.", "a = len(documents)"), block("Two.", "print(a, len(documents))"),
                    "Done.")
    result = run_exec(["-m", script.model, "go"], input="some data\n")
    assert result.status == 0, result.stderr
    assert script.result_sent(2) == "<helpers_result>\n1 1\n</helpers_result>"


def test_split_inputs_leaves_prompts_and_answers_alone():
    stdin = {"role": "user", "content": "x" * (INLINE_MAX_CHARS + 1)}
    prompt = {"role": "user", "content": "the task"}
    inputs = split_inputs([stdin, prompt], lambda message: message is stdin)
    assert inputs.documents == [{"text": stdin["content"], "source": "stdin"}]
    assert len(inputs.messages[0]["content"]) < PREVIEW_CHARS + 300
    assert inputs.messages[1]["content"].startswith("(The input above is also in the runtime")
    assert inputs.messages[2] is prompt
