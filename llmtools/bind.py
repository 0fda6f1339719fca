"""Binding free text to a function signature, and turning text into a list.

    bind(content, "send_invoice(customer: str, amount: float, due: str = 'net 30')")
        -> Binding(arguments={"customer": "ACME", "amount": 1200.0}, missing=[], question=None)
    list_bind(content, "the people mentioned", item_type=str) -> ["Ada", "Grace"]

The model is asked for JSON and its answer is checked here, not trusted: arguments the
signature does not have are dropped, values are coerced to simple annotations (int,
float, bool, str, list, dict), and a required parameter the model could not fill is
`missing` however the model put it. When something is missing the model also writes
the one question whose answer would fill it, which is what a caller shows a user.

`ask(messages) -> str` is the model call, passed in so this module needs no provider:
the runtime's llm_bind helper passes one that goes through `Exchange`; tests pass a
function.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import json
import re
from collections.abc import Callable
from typing import Any

from llmtools import stack
from llmtools.errors import LlmtoolsError, UsageError

Ask = Callable[[list[dict]], str]

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
    kinds = {inspect.Parameter.VAR_POSITIONAL: "*args", inspect.Parameter.VAR_KEYWORD: "**kwargs",
             inspect.Parameter.KEYWORD_ONLY: "keyword"}
    parameters = [
        Parameter(p.name, _annotation_text(p.annotation),
                  None if p.default is inspect.Parameter.empty else repr(p.default),
                  kinds.get(p.kind, "normal"))
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

    @property
    def complete(self) -> bool:
        return not self.missing

    def call_text(self) -> str:
        """`f(a=1, b='x')`, or `None  # the question` when something is missing."""
        if not self.complete:
            question = self.question or f"What is {', '.join(self.missing)}?"
            return f"None  # {question}"
        arguments = ", ".join(f"{name}={value!r}" for name, value in self.arguments.items())
        return f"{self.signature.name}({arguments})"


class BindError(LlmtoolsError):
    """Required arguments could not be found in the content; `question` would find them."""

    def __init__(self, binding: Binding) -> None:
        question = binding.question or f"What is {', '.join(binding.missing)}?"
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
            if isinstance(value, str):
                lowered = value.strip().lower()
                if lowered in ("true", "yes", "1", "y"):
                    return True
                if lowered in ("false", "no", "0", "n"):
                    return False
                return value
            return bool(value)
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


# --- asking -----------------------------------------------------------------------------

BIND_SYSTEM = """\
You bind information to the arguments of a function call. Read the content, then reply \
with one JSON object and nothing else:
{"arguments": {"<parameter>": <value>, ...}, "missing": ["<parameter>", ...], "question": <string or null>}
- Give a value only when the content supports it; never invent one. Leave out parameters \
that have a default unless the content sets them.
- Use JSON values of the annotated types (numbers as numbers, lists as arrays).
- "missing" lists required parameters the content does not give; then "question" is the \
one short question whose answer would give them. Otherwise "question" is null."""

LIST_SYSTEM = """\
You turn content into a list. Reply with one JSON array and nothing else: the items the \
instruction asks for, in the order they appear, each a JSON {kind}. Reply [] if there are none."""


def _content_messages(content: list[dict] | str) -> list[dict]:
    if isinstance(content, str):
        return [stack.message("user", content)]
    return list(content)


def bind(content: list[dict] | str, signature: Signature | str, *, ask: Ask) -> Binding:
    if isinstance(signature, str):
        signature = parse_signature(signature)
    described = f"Function: {signature.text()}"
    if signature.doc:
        described += f"\nDocumentation:\n{signature.doc}"
    messages = [stack.message("system", BIND_SYSTEM), *_content_messages(content),
                stack.message("user", f"{described}\n\nBind its arguments from the content above.")]
    reply = ask(messages)
    try:
        answer = parse_json_reply(reply, dict)
    except ValueError as error:
        raise LlmtoolsError(f"binding {signature.name}(): {error}") from None
    proposed = answer.get("arguments") if isinstance(answer.get("arguments"), dict) else {}
    arguments: dict[str, Any] = {}
    for name, value in proposed.items():
        parameter = signature.parameter(name)
        if parameter is None and not signature.takes_any_keyword:
            continue  # the model made up a parameter
        arguments[name] = coerce(value, parameter.annotation if parameter else None)
    # Positional order first, as the signature lists them, so call_text() reads naturally.
    order = {p.name: position for position, p in enumerate(signature.parameters)}
    arguments = dict(sorted(arguments.items(), key=lambda item: order.get(item[0], len(order))))
    # What is missing is decided here, from the signature: a model may leave a required
    # argument out without listing it, or list it and still give it as null.
    missing = [p.name for p in signature.parameters
               if p.required and arguments.get(p.name) is None]
    for name in missing:
        arguments.pop(name, None)
    question = answer.get("question") if missing and isinstance(answer.get("question"), str) else None
    return Binding(signature, arguments, missing, question)


def list_bind(content: list[dict] | str, description: str, *, ask: Ask, item_type: type = str) -> list:
    kind = {str: "string", int: "integer", float: "number", bool: "boolean",
            dict: "object", list: "array"}.get(item_type, "value")
    messages = [stack.message("system", LIST_SYSTEM.format(kind=kind)), *_content_messages(content),
                stack.message("user", f"Instruction: {description}")]
    reply = ask(messages)
    try:
        items = parse_json_reply(reply, list)
    except ValueError:
        # A model that ignored the format but wrote one item a line still said something usable.
        items = [line.strip().lstrip("-*• ").strip() for line in reply.splitlines() if line.strip()]
    annotation = item_type.__name__ if item_type in _SIMPLE_TYPES.values() else None
    return [coerce(item, annotation) for item in items]
