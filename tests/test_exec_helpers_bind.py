"""llm_bind and llm_list_bind inside llm-exec: the scope widens to the task and the thread's
variables, and a helper model (model=, [exec] helper_model) does the binding."""

from __future__ import annotations

import json

from tests.test_exec_cli import Script, block, run_exec

SEARCH = "search_linkedin_profile(first_name, last_name, company_name)"
PAGE = "Speakers: Ada Lovelace (Analytical Engines Ltd), Steve Baxter (River City Labs)."


def answer(arguments: dict, question: str | None = None) -> str:
    missing = [name for name, value in arguments.items() if value is None]
    return json.dumps({"arguments": arguments, "missing": missing, "question": question if missing else None})


STEVE = {"first_name": "Steve", "last_name": "Baxter"}


def test_a_value_missing_the_company_is_bound_from_the_task_llm_exec_was_given(tmp_path):
    script = Script(tmp_path,
                    block("Binding.", f"llm_bind('Steve Baxter', '{SEARCH}')"),
                    answer({**STEVE, "company_name": None}, "Which company?"),
                    answer({**STEVE, "company_name": "River City Labs"}),
                    "Done.")
    result = run_exec(["-m", script.model, "Find Steve Baxter's profile"], PAGE)
    assert result.status == 0, result.stderr
    requests = script.requests()
    assert PAGE not in json.dumps(requests[1]["messages"])
    assert PAGE in json.dumps(requests[2]["messages"])
    assert "Find Steve Baxter's profile" in json.dumps(requests[2]["messages"])
    assert requests[2]["schema"]["title"] == "bind_search_linkedin_profile"
    assert script.result_sent(3) == ("<helpers_result>\n{'first_name': 'Steve', 'last_name': 'Baxter', "
                                     "'company_name': 'River City Labs'}\n</helpers_result>")


def test_then_the_threads_variables_and_only_then_the_question(tmp_path):
    script = Script(tmp_path,
                    block("Binding.", f"employer = 'River City Labs'\nprofile = llm_bind('Steve Baxter', '{SEARCH}')"),
                    answer({**STEVE, "company_name": None}, "Which company?"),
                    answer({**STEVE, "company_name": None}, "Which company?"),
                    answer({**STEVE, "company_name": "River City Labs"}),
                    block("Now one nobody knows.", "llm_bind('Ada', 'email(address)')"),
                    answer({"address": None}, "What is Ada's email address?"),
                    answer({"address": None}, "What is Ada's email address?"),
                    answer({"address": None}, "What is Ada's email address?"),
                    "Done.")
    result = run_exec(["-m", script.model, "Find Steve Baxter"])
    assert result.status == 0, result.stderr
    requests = script.requests()
    assert "employer = River City Labs" in json.dumps(requests[3]["messages"])
    assert "employer" not in json.dumps(requests[2]["messages"])
    feedback = script.result_sent(8)
    assert "BindError" in feedback and "What is Ada's email address?" in feedback


def test_helper_model_from_config_and_model_argument_pick_the_binding_model(tmp_path, write_config):
    helper = Script(tmp_path, answer({"city": "Lyon"}), name="helper.jsonl")
    other = Script(tmp_path, json.dumps({"items": ["Ada", "Grace"]}), name="other.jsonl")
    write_config(f'[exec]\nhelper_model = "{helper.model}"\n')
    planner = Script(tmp_path,
                     block("Binding.", "print(llm_bind('Weather in Lyon?', 'forecast(city)'))\n"
                                       f"print(llm_list_bind('Ada, Grace', 'names', model='{other.model}'))"),
                     "Done.",
                     name="planner.jsonl")
    result = run_exec(["-m", planner.model, "-z", "2048", "go"])
    assert result.status == 0, result.stderr
    assert len(planner.requests()) == 2  # the plan and the answer, no helper calls
    assert planner.result_sent(1) == "<helpers_result>\n{'city': 'Lyon'}\n['Ada', 'Grace']\n</helpers_result>"
    [bound] = helper.requests()
    assert bound["thinking"] is None  # llm-exec's budget is for its own model
    assert len(other.requests()) == 1
