"""Binding text to a signature (the core behind llm-exec's llm_bind and llm_list_bind)."""

from __future__ import annotations

import json

import pytest

from llmtools import bind
from llmtools.errors import UsageError


def replying(*replies: str):
    """An `ask` that answers from a list and keeps what it was sent (and the schemas)."""
    sent: list[list[dict]] = []
    schemas: list[dict] = []
    queue = list(replies)

    def ask(messages: list[dict], schema: dict) -> str:
        sent.append(messages)
        schemas.append(schema)
        return queue.pop(0)

    ask.sent = sent
    ask.schemas = schemas
    return ask


def test_signatures_parse_with_annotations_defaults_and_star_arguments():
    signature = bind.parse_signature("def send(to: str, amount: float = 1.0, *rest, urgent: bool, **extra) -> bool:")
    assert signature.name == "send" and signature.returns == "bool"
    assert [(p.name, p.annotation, p.default, p.kind) for p in signature.parameters] == [
        ("to", "str", None, "normal"), ("amount", "float", "1.0", "normal"), ("rest", None, None, "*args"),
        ("urgent", "bool", None, "keyword"), ("extra", None, None, "**kwargs")]
    assert [p.name for p in signature.parameters if p.required] == ["to", "urgent"]
    assert signature.text() == "send(to: str, amount: float = 1.0, *rest, urgent: bool, **extra) -> bool"
    with pytest.raises(UsageError, match="not a function signature"):
        bind.parse_signature("not a signature(")


def test_a_real_callables_signature_and_docstring_are_read():
    def invoice(customer: str, total: float, paid: bool = False) -> str:
        """Make an invoice."""

    signature = bind.signature_of(invoice)
    assert signature.text() == "invoice(customer: str, total: float, paid: bool = False) -> str"
    assert signature.doc == "Make an invoice."


def test_arguments_are_bound_coerced_and_checked_against_the_signature():
    ask = replying('Sure! ```json\n{"arguments": {"to": "Ada", "amount": "1,200.50", "invented": 1},'
                   ' "missing": [], "question": null}\n```')
    binding = bind.bind("Pay Ada 1,200.50", "send(to: str, amount: float, note: str = '')", ask=ask)
    assert binding.complete and binding.arguments == {"to": "Ada", "amount": 1200.5}
    assert binding.call_text() == "send(to='Ada', amount=1200.5)"
    system, content, instruction = ask.sent[0]
    assert system["role"] == "system" and "JSON" in system["content"]
    assert content == {"role": "user", "content": "Pay Ada 1,200.50"}
    assert "send(to: str, amount: float, note: str = '')" in instruction["content"]


def test_missing_required_arguments_come_back_with_the_question_that_would_find_them():
    ask = replying(json.dumps({"arguments": {"to": "Ada", "amount": None}, "missing": [],
                              "question": "How much should Ada be paid?"}))
    binding = bind.bind([{"role": "user", "content": "Pay Ada"}], "send(to: str, amount: float)", ask=ask)
    assert not binding.complete and binding.missing == ["amount"]
    assert binding.arguments == {"to": "Ada"}
    assert binding.call_text() == "send(to='Ada', amount=None)  # How much should Ada be paid?"
    error = bind.BindError(binding)
    assert error.question == "How much should Ada be paid?"
    assert "cannot bind amount of send()" in str(error)


def test_a_reply_without_json_is_an_error_naming_the_function():
    with pytest.raises(Exception, match="binding send"):
        bind.bind("x", "send(to)", ask=replying("I cannot help with that."))


def test_lists_are_bound_to_the_item_type_and_a_line_list_is_accepted():
    numbers = bind.list_bind("one, 2 and three", "the numbers", ask=replying('["1", 2, "3"]'), item_type=int)
    assert numbers == [1, 2, 3]
    names = bind.list_bind("...", "names", ask=replying("- Ada\n- Grace\n"))
    assert names == ["Ada", "Grace"]
    wrapped = bind.list_bind("...", "names", ask=replying('{"items": ["Ada", "Grace"]}'))
    assert wrapped == ["Ada", "Grace"]


@pytest.mark.parametrize("value, annotation, expected", [
    ("3", "int", 3), ("2.5", "float", 2.5), ("yes", "bool", True), ("no", "bool", False),
    (4, "str", "4"), ("[1, 2]", "list", [1, 2]), ("x", "int", "x"), (True, "int", 1),
    ({"a": 1}, "Mapping[str, int]", {"a": 1}), (None, "int", None),
])
def test_coercion_to_simple_annotations(value, annotation, expected):
    assert bind.coerce(value, annotation) == expected
