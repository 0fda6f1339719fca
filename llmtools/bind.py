"""Binding free text to a function signature, and turning text into a list.

    bind(content, "send_invoice(customer: str, amount: float, due: str = 'net 30')")
        -> Binding(arguments={"customer": "ACME", "amount": 1200.0}, missing=[], question=None)
    list_bind(content, "the people mentioned", item_type=str) -> ["Ada", "Grace"]

The model is asked for JSON fitting a schema (`llmtools.schemas`), which providers with
structured output enforce, and its answer is checked here either way, not trusted:
arguments the signature does not have are dropped, values are coerced to simple
annotations (int, float, bool, str, list, dict) and a value that still does not fit is
dropped, and a required parameter the model could not fill is `missing` however the model
put it. When something is missing the model also writes the one question whose answer
would fill it, which is what a caller shows a user.

`bind_in_scopes` widens the content as LLMVM does (the value, then the whole
conversation, then the thread's variables) until everything required is bound.

`ask(messages, schema) -> str` is the model call, passed in so this module needs no
provider: `llmtools.structured.asker` makes one that goes through `Exchange` (and so
through `llmtools.services`); tests pass a function.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import json
import re
from collections.abc import Callable
from typing import Any

from llmtools import schemas, stack
from llmtools.errors import LlmtoolsError, UsageError
from llmtools.notices import tell

# (messages, the JSON schema the answer must fit) -> the model's answer text.
Ask = Callable[[list[dict], dict], str]

_SIMPLE_TYPES: dict[str, type] = {"int": int, "float": float, "bool": bool, "str": str,
                                  "list": list, "dict": dict}


@dataclasses.dataclass
class Parameter:
    name: str
    annotation: str | None = None
    default: str | None = None  # source text of the default, None if required
    kind: str = "normal"  # normal, keyword, *args, **kwargs

    @property
    def required(self) -> bool:
        return self.default is None and self.kind in ("normal", "keyword")

    def text(self) -> str:
        prefix = {"*args": "*", "**kwargs": "**"}.get(self.kind, "")
        out = prefix + self.name
        if self.annotation:
            out += f": {self.annotation}"
        if self.default is not None:
            out += f" = {self.default}"
        return out


@dataclasses.dataclass
class Signature:
    name: str
    parameters: list[Parameter]
    returns: str | None = None
    doc: str | None = None

    def text(self) -> str:
        out = f"{self.name}({', '.join(p.text() for p in self.parameters)})"
        return out + (f" -> {self.returns}" if self.returns else "")

    def parameter(self, name: str) -> Parameter | None:
        return next((p for p in self.parameters if p.name == name and p.kind in ("normal", "keyword")),
                    None)

    @property
    def takes_any_keyword(self) -> bool:
        return any(p.kind == "**kwargs" for p in self.parameters)


def parse_signature(text: str) -> Signature:
    """`f(a, b: int = 2) -> str` (a leading `def` and trailing `:` are allowed)."""
    source = text.strip().removeprefix("def ").strip().rstrip(":").strip()
    try:
        tree = ast.parse(f"def {source}: pass")
        function = tree.body[0]
    except SyntaxError:
        raise UsageError(f"not a function signature: {text!r} (expected something like 'f(a, b: int)')") \
            from None
    assert isinstance(function, ast.FunctionDef)
    arguments = function.args
    parameters: list[Parameter] = []

    def unparse(node) -> str | None:
        return ast.unparse(node) if node is not None else None

    positional = arguments.posonlyargs + arguments.args
    defaults = [None] * (len(positional) - len(arguments.defaults)) + list(arguments.defaults)
    for argument, default in zip(positional, defaults, strict=True):
        parameters.append(Parameter(argument.arg, unparse(argument.annotation), unparse(default)))
    if arguments.vararg:
        parameters.append(Parameter(arguments.vararg.arg, unparse(arguments.vararg.annotation),
                                    kind="*args"))
    for argument, default in zip(arguments.kwonlyargs, arguments.kw_defaults, strict=True):
        parameters.append(Parameter(argument.arg, unparse(argument.annotation), unparse(default),
                                    kind="keyword"))
    if arguments.kwarg:
        parameters.append(Parameter(arguments.kwarg.arg, unparse(arguments.kwarg.annotation),
                                    kind="**kwargs"))
    return Signature(function.name, parameters, unparse(function.returns))


def signature_of(function: Callable) -> Signature:
    """The signature of a real callable, with its docstring for the model to read."""
    name = getattr(function, "__name__", type(function).__name__)
    try:
        found = inspect.signature(function)
    except (TypeError, ValueError):
        raise UsageError(f"cannot read the signature of {name!r}") from None
    kinds = {"VAR_POSITIONAL": "*args", "VAR_KEYWORD": "**kwargs", "KEYWORD_ONLY": "keyword"}
    parameters = [
        Parameter(p.name, _annotation_text(p.annotation),
                  None if p.default is inspect.Parameter.empty else repr(p.default),
                  kinds.get(p.kind.name, "normal"))
        for p in found.parameters.values()]
    return Signature(name, parameters, _annotation_text(found.return_annotation), inspect.getdoc(function))


def _annotation_text(annotation) -> str | None:
    if annotation is inspect.Signature.empty:
        return None
    if isinstance(annotation, str):  # `from __future__ import annotations` leaves them as text
        return annotation
    if isinstance(annotation, type):
        return annotation.__name__
    return inspect.formatannotation(annotation)


@dataclasses.dataclass
class Binding:
    signature: Signature
    arguments: dict[str, Any]
    missing: list[str]
    question: str | None = None
    # Where the model's answer broke the schema (values dropped or treated as missing).
    problems: list[str] = dataclasses.field(default_factory=list)
    scope: str | None = None  # which scope bound it (see bind_in_scopes)

    @property
    def complete(self) -> bool:
        return not self.missing

    def json_arguments(self) -> dict[str, Any]:
        """Every named parameter's value (null where missing), in the signature's order."""
        values = {p.name: self.arguments.get(p.name) for p in self.signature.parameters
                  if p.kind in ("normal", "keyword") and (p.name in self.arguments or p.required)}
        values.update({name: value for name, value in self.arguments.items() if name not in values})
        return values

    def asked(self) -> str:
        """The one question whose answer would bind what is missing."""
        return self.question or f"What is {', '.join(self.missing)}?"

    def call_text(self) -> str:
        """`f(a=1, b='x')`; with something missing, `f(a=1, b=None)  # the question`."""
        values = dict(self.arguments)
        values.update({name: None for name in self.missing})
        order = {p.name: position for position, p in enumerate(self.signature.parameters)}
        ordered = sorted(values.items(), key=lambda item: order.get(item[0], len(order)))
        call = f"{self.signature.name}({', '.join(f'{name}={value!r}' for name, value in ordered)})"
        return call if self.complete else f"{call}  # {self.asked()}"


class BindError(LlmtoolsError):
    """Required arguments could not be found in the content; `question` would find them."""

    def __init__(self, binding: Binding) -> None:
        question = binding.asked()
        super().__init__(f"cannot bind {', '.join(binding.missing)} of {binding.signature.name}(): "
                         f"{question}")
        self.binding = binding
        self.missing = binding.missing
        self.question = question


# --- the model's JSON ----------------------------------------------------------------

_FENCE = re.compile(r"^\s*```[\w-]*\s*\n(.*?)\n\s*```\s*$", re.DOTALL)


def parse_json_reply(text: str, kind: type = dict) -> Any:
    """The first JSON object (or array) in a model's reply, fences and chatter around it ignored."""
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1)
    opener = "{" if kind is dict else "["
    decoder = json.JSONDecoder()
    position = text.find(opener)
    while position != -1:
        try:
            value, _ = decoder.raw_decode(text, position)
        except ValueError:
            position = text.find(opener, position + 1)
            continue
        if isinstance(value, kind):
            return value
        position = text.find(opener, position + 1)
    raise ValueError(f"no JSON {'object' if kind is dict else 'array'} in the model's reply: "
                     f"{text[:200]!r}")


def coerce(value: Any, annotation: str | None) -> Any:
    """Make a JSON value fit a simple annotation; anything else is passed as it came."""
    target = _SIMPLE_TYPES.get((annotation or "").strip())
    if target is None or value is None or isinstance(value, target) and not (
            target is int and isinstance(value, bool)):
        return value
    try:
        if target is bool:
            return _coerce_bool(value)
        if target is int and isinstance(value, str):
            return int(float(value.replace(",", "").strip()))
        if target is float and isinstance(value, str):
            return float(value.replace(",", "").strip())
        if target in (list, dict) and isinstance(value, str):
            parsed = json.loads(value)
            return parsed if isinstance(parsed, target) else value
        return target(value)
    except (TypeError, ValueError):
        return value


def _coerce_bool(value: Any) -> Any:
    if not isinstance(value, str):
        return bool(value)
    lowered = value.strip().lower()
    if lowered in ("true", "yes", "1", "y"):
        return True
    if lowered in ("false", "no", "0", "n"):
        return False
    return value


_LIST_MARKER = re.compile(r"^\s*(?:[-*•+]|\(?\d+[.)])\s+")
_LAST_AND = re.compile(r",?\s+(?:and|&)\s+(?=[^,]+$)")


def split_list_text(text: str) -> list[str]:
    """Items of a list written as text: numbered or bulleted lines, or one comma-separated
    line ("a, b and c"); what a model writes when it ignores the JSON it was asked for."""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    if len(lines) == 1 and not _LIST_MARKER.match(lines[0]):
        line = _LAST_AND.sub(", ", lines[0].strip().rstrip("."))
        return [item.strip() for item in line.split(",") if item.strip()]
    return [_LIST_MARKER.sub("", line).strip() for line in lines]


# --- asking -----------------------------------------------------------------------------

BIND_SYSTEM = """\
You bind information to the arguments of a function call. Read the content, then reply \
with one JSON object and nothing else:
{"arguments": {"<parameter>": <value or null>, ...}, "missing": ["<parameter>", ...], "question": <string or null>}
- Give a value only when the content supports it; never invent one. Give null for a \
parameter the content does not give, and for one with a default the content does not set.
- Use JSON values of the annotated types (numbers as numbers, lists as arrays).
- "missing" lists required parameters the content does not give; then "question" is the \
one short question whose answer would give them. Otherwise "question" is null."""

LIST_SYSTEM = """\
You turn content into a list. Reply with one JSON object and nothing else: {{"items": [...]}}, \
the items the instruction asks for, in the order they appear, each a JSON {kind}. \
Give "items": [] if there are none."""


def _content_messages(content: list[dict] | str) -> list[dict]:
    if isinstance(content, str):
        return [stack.message("user", content)]
    return list(content)


def bind(content: list[dict] | str, signature: Signature | str, *, ask: Ask,
         known: dict[str, Any] | None = None, note: str | None = None) -> Binding:
    """Bind `signature`'s arguments from `content` with one model call; `known` are values
    found earlier (in a narrower scope), which the model is told and which are kept;
    `note` says what in the content is the value to bind and what is context."""
    if isinstance(signature, str):
        signature = parse_signature(signature)
    schema = schemas.binding_schema(signature)
    described = f"Function: {signature.text()}"
    if signature.doc:
        described += f"\nDocumentation:\n{signature.doc}"
    if known:
        described += f"\nAlready known: {json.dumps(known, ensure_ascii=False, default=str)}"
    instruction = f"{described}\n\nBind its arguments from the content above."
    if note:
        instruction += f" {note}"
    messages = [stack.message("system", BIND_SYSTEM), *_content_messages(content),
                stack.message("user", instruction)]
    reply = ask(messages, schema)
    try:
        answer = parse_json_reply(reply, dict)
    except ValueError as error:
        raise LlmtoolsError(f"binding {signature.name}(): {error}") from None
    problems = schemas.validate(answer, schema)
    arguments = {**_checked_arguments(answer.get("arguments"), signature, problems), **(known or {})}
    # What is missing is decided here, from the signature: a model may leave a required
    # argument out without listing it, or list it and still give it as null.
    missing = [p.name for p in signature.parameters if p.required and arguments.get(p.name) is None]
    arguments = {name: value for name, value in arguments.items() if value is not None}
    question = answer.get("question") if missing and isinstance(answer.get("question"), str) else None
    order = {p.name: position for position, p in enumerate(signature.parameters)}
    arguments = dict(sorted(arguments.items(), key=lambda item: order.get(item[0], len(order))))
    return Binding(signature, arguments, missing, question or None, problems)


def _checked_arguments(proposed: Any, signature: Signature, problems: list[str]) -> dict[str, Any]:
    """The model's arguments that belong to the signature, coerced to their annotations; a
    value that still does not fit its parameter's type is dropped (so counts as missing)."""
    if not isinstance(proposed, dict):
        return {}
    arguments: dict[str, Any] = {}
    for name, value in proposed.items():
        parameter = signature.parameter(name)
        if parameter is None and not signature.takes_any_keyword:
            continue  # the model made up a parameter
        value = coerce(value, parameter.annotation if parameter else None)
        if parameter is not None and value is not None:
            wrong = schemas.validate(value, schemas.parameter_schema(parameter), name)
            if wrong:
                problems.extend(wrong)
                continue
        arguments[name] = value
    return arguments


@dataclasses.dataclass
class Scope:
    """Content to bind from, named for messages: "the last message", "the whole stack"."""

    name: str
    messages: list[dict]
    note: str | None = None  # for the model: which message is the value, what is context


def bind_in_scopes(scopes: list[Scope], signature: Signature | str, *, ask: Ask) -> Binding:
    """Bind from the narrowest scope that holds every required argument, as LLMVM widens:
    the value itself, then the whole conversation, then the thread's variables. Values found
    in a narrower scope are kept as the scope widens; a scope no wider than the one before
    is skipped. The binding that comes back carries the widest scope's question."""
    if isinstance(signature, str):
        signature = parse_signature(signature)
    binding: Binding | None = None
    tried: list[dict] | None = None
    for scope in scopes:
        if not scope.messages or scope.messages == tried:
            continue
        tried = scope.messages
        known = binding.arguments if binding is not None else None
        binding = bind(scope.messages, signature, ask=ask, known=known, note=scope.note)
        binding.scope = scope.name
        if binding.complete:
            break
    if binding is None:
        raise UsageError(f"nothing to bind {signature.name}() from: the content is empty")
    return binding


# What a scope wider than the value itself says: which message is the value.
WIDE_NOTE = "The value to bind is the last message; the messages before it are its context."


def stack_scopes(messages: list[dict]) -> list[Scope]:
    """llm-bind's scopes: the last message (system messages aside), then the whole stack."""
    system = [m for m in messages if m["role"] == "system"]
    others = [m for m in messages if m["role"] != "system"]
    return [Scope("the last message", [*system, *others[-1:]]),
            Scope("the whole stack", messages, WIDE_NOTE)]


def bind_stack(messages: list[dict], signature: Signature | str, *, ask: Ask) -> Binding:
    return bind_in_scopes(stack_scopes(messages), signature, ask=ask)


ITEM_TYPES: dict[str, type] = {"str": str, "int": int, "float": float, "bool": bool, "object": dict}


def json_text(value: Any) -> str:
    """One line of JSON, as llm-bind prints it (non-ASCII kept as it is)."""
    return json.dumps(value, ensure_ascii=False, default=str)


def list_bind(content: list[dict] | str, description: str, *, ask: Ask, item_type: type = str) -> list:
    kind = schemas.ITEM_TYPES.get(item_type, "value")
    schema = schemas.list_schema(item_type)
    messages = [stack.message("system", LIST_SYSTEM.format(kind=kind)), *_content_messages(content),
                stack.message("user", f"Instruction: {description}")]
    reply = ask(messages, schema)
    items = _reply_items(reply)
    annotation = item_type.__name__ if item_type in _SIMPLE_TYPES.values() else None
    item_schema = schema["properties"]["items"]["items"]
    kept = []
    for index, item in enumerate(items):
        value = coerce(item, annotation)
        problems = schemas.validate(value, item_schema, f"item {index + 1}")
        if problems:
            tell("warning", f"dropped {problems[0]}")
        else:
            kept.append(value)
    return kept


def _reply_items(reply: str) -> list:
    try:
        answer = parse_json_reply(reply, dict)
        if isinstance(answer.get("items"), list):
            return answer["items"]
    except ValueError:
        pass
    try:
        return parse_json_reply(reply, list)
    except ValueError:
        # A model that ignored the format but wrote a list as text still said something usable.
        return split_list_text(reply)
