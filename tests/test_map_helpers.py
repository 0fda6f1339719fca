"""llm_call inside llm-exec: its own model (model= or [exec] helper_model), and content too
long for that model read in chunks rather than cut."""

from __future__ import annotations

import json

from tests.test_exec_cli import Script, block, run_exec


def test_llm_call_takes_model_and_helper_model_from_config(tmp_path, write_config):
    helper = Script(tmp_path, "from the cheap model", "from the configured one", name="helper.jsonl")
    other = Script(tmp_path, "unused", name="other.jsonl")
    write_config(f'[models.cheap]\nprovider = "script"\npath = "{helper.path}"\n'
                 f'[exec]\nhelper_model = "cheap"\n')
    planner = Script(tmp_path,
                     block("Asking.", f"print(llm_call('text', 'shout', model='script:{other.path}'))"),
                     block("Again.", "print(llm_call('text', 'shout'))"),
                     "Done.", name="planner.jsonl")
    other.path.write_text(json.dumps("from the named model") + "\n")
    result = run_exec(["-m", planner.model, "use helpers"])
    assert result.status == 0, result.stderr
    assert planner.result_sent(1) == "<helpers_result>\nfrom the named model\n</helpers_result>"
    assert planner.result_sent(2) == "<helpers_result>\nfrom the cheap model\n</helpers_result>"
    assert len(planner.requests()) == 3 and len(helper.requests()) == 1 and len(other.requests()) == 1


def test_llm_call_reads_content_too_long_for_its_model_in_chunks(tmp_path, write_config):
    helper = Script(tmp_path, "SOME", "The code is 4471.", name="helper.jsonl")
    write_config(f'[models.tiny]\nprovider = "script"\npath = "{helper.path}"\ncontext_size = 1500\n')
    filler = "\n".join(f"Line {n}: the orchard keeps its copper lanterns by the river." for n in range(400))
    (tmp_path / "long.txt").write_text(filler + "\nThe vault code is 4471.\n" + filler)
    planner = Script(tmp_path,
                     block("Reading.", f"print(llm_call(read_file('{tmp_path / 'long.txt'}'), "
                                       f"'What is the vault code?', model='tiny'))"),
                     "Done.", name="planner.jsonl")
    # The file is outside the working directory: the sandbox shows it only when named.
    result = run_exec(["-m", planner.model, "--allow-path", str(tmp_path), "find the code"])
    assert result.status == 0, result.stderr
    assert planner.result_sent(1).startswith("<helpers_result>\nThe code is 4471.")
    decide, final = helper.requests()
    assert "Reply ALL or SOME" in decide["messages"][-1]["content"]
    sent = "\n".join(m["content"] for m in final["messages"])
    assert "The vault code is 4471." in sent and len(sent) < len(filler)
