"""llm-bind: binding a stack to a signature, widening the scope, lists, and the schema check."""

from __future__ import annotations

import json

import pytest

from llmtools import bind, schemas
from llmtools.providers.script import requests_path
from tests.helpers import run_command

SEARCH = "search_linkedin_profile(first_name, last_name, company_name)"
TEAM_PAGE = """# Our investors

| Name | Role | Company |
|---|---|---|
| Ada Lovelace | Analyst | Analytical Engines Ltd |
| Steve Baxter | Partner | River City Labs |
| Grace Hopper | Advisor | COBOL Partners |
"""


def script(tmp_path, *replies) -> tuple[str, object]:
    """A script: model answering with `replies` (dicts become their JSON text)."""
    path = tmp_path / "replies.jsonl"
    path.write_text("".join(json.dumps(reply if isinstance(reply, str) else json.dumps(reply)) + "\n"
                            for reply in replies))
    return f"script:{path}", path


def sent(path) -> list[dict]:
    sidecar = requests_path(path)
    return [json.loads(line) for line in sidecar.read_text().splitlines()]


def run_bind(args, input=None):
    from llmtools.cli.bind import command

    return run_command(command, args, input, prog_name="llm-bind")


def answer(arguments: dict, question: str | None = None) -> dict:
    missing = [name for name, value in arguments.items() if value is None]
    return {"arguments": arguments, "missing": missing, "question": question if missing else None}


def stack_text(*messages: dict) -> str:
    return "".join(json.dumps(message) + "\n" for message in messages)


# --- scope widening ------------------------------------------------------------------------------


def test_the_seeds_walkthrough_binds_a_listed_person_with_no_question(tmp_path):
    """A page lists people; "Steve Baxter" is bound to a three-argument function: the last
    message gives the name, the page (one scope wider) gives the company."""
    model, path = script(
        tmp_path,
        answer({"first_name": "Steve", "last_name": "Baxter", "company_name": None},
               "Which company does Steve Baxter work for?"),
        answer({"first_name": "Steve", "last_name": "Baxter", "company_name": "River City Labs"}))
    page = {"role": "user", "content": TEAM_PAGE, "meta": {"source": "https://example.test/team"}}
    result = run_bind(["-m", model, "-t", "the company Steve Baxter works for", SEARCH], stack_text(page))
    assert result.status == 0, result.stderr
    assert result.stdout == ("search_linkedin_profile(first_name='Steve', last_name='Baxter', "
                             "company_name='River City Labs')\n")
    narrow, wide = sent(path)
    narrow_text = json.dumps(narrow["messages"])
    assert "River City Labs" not in narrow_text and "the company Steve Baxter works for" in narrow_text
    wide_text = json.dumps(wide["messages"])
    assert "River City Labs" in wide_text and "https://example.test/team" in wide_text
    assert '"first_name": "Steve"' in wide["messages"][-1]["content"]  # what the narrow scope found
    assert wide["schema"]["properties"]["arguments"]["required"] == ["first_name", "last_name", "company_name"]


def test_a_name_and_a_company_planted_in_an_earlier_message_are_bound(tmp_path):
    model, path = script(
        tmp_path,
        answer({"name": None, "company": None}, "Who should be emailed?"),
        answer({"name": "Grace Hopper", "company": "COBOL Partners"}))
    messages = [{"role": "user", "content": "Grace Hopper joined COBOL Partners last spring."},
                {"role": "assistant", "content": "Noted."},
                {"role": "user", "content": "Draft the welcome email."}]
    result = run_bind(["-m", model, "--json", "email(name: str, company: str)"], stack_text(*messages))
    assert result.status == 0, result.stderr
    assert json.loads(result.stdout) == {"name": "Grace Hopper", "company": "COBOL Partners"}
    assert [len(call["messages"]) for call in sent(path)] == [3, 5]  # last message, then all three


def test_what_no_scope_gives_is_printed_as_none_with_the_one_question_and_exit_1(tmp_path):
    narrow = answer({"first_name": "Steve", "last_name": "Baxter", "company_name": None}, "Which company?")
    wide = answer({"first_name": "Steve", "last_name": "Baxter", "company_name": None},
                  "Which company does Steve Baxter work for?")
    model, path = script(tmp_path, narrow, wide, narrow, wide)
    messages = [{"role": "user", "content": "Steve Baxter is speaking on Tuesday."},
                {"role": "user", "content": "Find Steve Baxter"}]
    result = run_bind(["-m", model, SEARCH], stack_text(*messages))
    assert result.status == 1
    assert result.stdout == ("search_linkedin_profile(first_name='Steve', last_name='Baxter', company_name=None)"
                             "  # Which company does Steve Baxter work for?\n")
    assert "cannot bind company_name" in result.stderr
    as_json = run_bind(["-m", model, "--json", SEARCH], stack_text(*messages))
    assert as_json.status == 1
    assert json.loads(as_json.stdout) == {"first_name": "Steve", "last_name": "Baxter", "company_name": None}
    assert "Which company does Steve Baxter work for?" in as_json.stderr
    assert len(sent(path)) == 4


def test_a_stack_of_one_message_is_asked_once(tmp_path):
    model, path = script(tmp_path, answer({"city": None}, "Which city?"))
    result = run_bind(["-m", model, "weather(city)"], "What's the weather like?")
    assert result.status == 1 and result.stdout.endswith("weather(city=None)  # Which city?\n")
    assert len(sent(path)) == 1


def test_stack_output_adds_the_call_as_an_assistant_message(tmp_path):
    model, _ = script(tmp_path, answer({"city": "Lyon"}))
    result = run_bind(["-m", model, "-S", "weather(city)"], "Is it raining in Lyon?")
    messages = result.stack()
    assert messages[-1]["role"] == "assistant" and messages[-1]["content"] == "weather(city='Lyon')"
    assert messages[0]["content"] == "Is it raining in Lyon?"


def test_usage_errors(tmp_path):
    model, _ = script(tmp_path)
    assert run_bind(["-m", model], "x").status == 2
    assert run_bind(["-m", model, "--list", "names", "f(a)"], "x").status == 2
    assert run_bind(["-m", model, "not a signature("], "x").status == 2
    assert run_bind(["-m", model, "f(a)"], "").status == 2  # nothing to bind from


# --- what the model says is checked, not trusted ----------------------------------------------------


def test_values_that_break_the_schema_are_dropped_and_so_asked_for(tmp_path):
    model, _ = script(tmp_path, json.dumps({"arguments": {"count": "many", "urgent": "yes", "made_up": 1},
                                            "missing": [], "question": None}))
    result = run_bind(["-m", model, "order(count: int, urgent: bool)"], "Order lots, urgently.")
    assert result.status == 1
    assert result.stdout.startswith("order(count=None, urgent=True)  # What is count?")


def test_the_schema_check_names_each_problem():
    schema = schemas.binding_schema(bind.parse_signature("f(a: int, b: str = 'x', *, c: list)"))
    good = {"arguments": {"a": 1, "b": None, "c": [1]}, "missing": [], "question": None}
    assert schemas.validate(good, schema) == []
    bad = {"arguments": {"a": 1.5, "b": 2, "z": 0}, "missing": ["q"], "question": "x" * 400}
    problems = schemas.validate(bad, schema)
    assert "$.arguments.a: expected integer or null, got number" in problems
    assert "$.arguments: 'c' is required" in problems and "$.arguments: 'z' is not allowed" in problems
    assert any(problem.startswith("$.missing[0]: 'q' is not one of") for problem in problems)
    assert "$.question: longer than 300 characters" in problems
    assert schemas.validate(True, {"type": "integer"}) == ["$: expected integer, got boolean"]


# --- lists ---------------------------------------------------------------------------------------

NAMES = ["Ada Lovelace", "Grace Hopper", "Barbara Liskov"]
LIST_FORMS = {
    "numbered": "1. Ada Lovelace\n2. Grace Hopper\n3. Barbara Liskov",
    "bulleted": "- Ada Lovelace\n* Grace Hopper\n• Barbara Liskov",
    "comma-separated": "Ada Lovelace, Grace Hopper and Barbara Liskov.",
    "json": json.dumps({"items": NAMES}),
}


@pytest.mark.parametrize("form", sorted(LIST_FORMS))
def test_lists_round_trip_whatever_form_the_model_writes_them_in(tmp_path, form):
    model, path = script(tmp_path, LIST_FORMS[form], LIST_FORMS[form])
    result = run_bind(["-m", model, "--list", "the computer scientists"], LIST_FORMS[form])
    assert result.status == 0, result.stderr
    assert json.loads(result.stdout) == NAMES
    # and the printed list, fed back in, comes out the same
    again = run_bind(["-m", model, "--list", "the computer scientists"], result.stdout)
    assert json.loads(again.stdout) == NAMES
    assert sent(path)[0]["schema"]["properties"]["items"]["type"] == "array"


def test_list_items_are_coerced_to_the_item_type_and_unfit_ones_dropped(tmp_path):
    model, _ = script(tmp_path, json.dumps({"items": ["1", 2, "three", 4.0]}))
    result = run_bind(["-m", model, "--list", "the numbers", "--item-type", "int"], "1, 2, three, 4")
    assert json.loads(result.stdout) == [1, 2, 4]
    assert "dropped item 3" in result.stderr


@pytest.mark.parametrize("text, items", [
    ("a, b, and c", ["a", "b", "c"]), ("1) x\n2) y", ["x", "y"]), ("only one", ["only one"]),
    ("(1) Smith, J.\n(2) Doe, A.", ["Smith, J.", "Doe, A."]),
])
def test_list_text_is_split_by_its_markers(text, items):
    assert bind.split_list_text(text) == items


def test_the_item_types_llm_bind_offers_are_the_ones_bind_knows():
    # cli/bind.py writes them out: importing llmtools.bind would slow down --help.
    from llmtools import bind
    from llmtools.cli import bind as cli_bind

    assert cli_bind.ITEM_TYPES == tuple(bind.ITEM_TYPES)
