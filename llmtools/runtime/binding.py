"""The runtime side of llm_bind and llm_list_bind: which model, and which scopes.

Model: `model=` in the call, else `[exec] helper_model` in config.toml, else the model of
the llm-exec call running the code, so a loop can plan with a strong model and bind or
map with a cheap one:

    [exec]
    helper_model = "haiku"

Scopes, widened as LLMVM widens them until every required argument is bound: the value
given, then the value with the task llm-exec was given (its prompt and piped content),
then that with the thread's variables (short forms of each), and only then BindError
with the one question that would bind the rest.

Model calls go through `llmtools.structured` and so through `llmtools.services`, never a
provider directly: a sandboxed runtime reaches models over the channel it is given.
"""

from __future__ import annotations

import reprlib
import types
from typing import TYPE_CHECKING, Any

from llmtools import stack
from llmtools.bind import WIDE_NOTE, Scope
from llmtools.runtime.helpers import STATE, Document, as_messages
from llmtools.runtime.results import context_spec

if TYPE_CHECKING:
    from llmtools.providers.base import ModelSpec

VARIABLE_CHARS = 2000  # of one variable's text
VARIABLES_CHARS = 12000  # of them all
def helper_spec(model: str | None) -> tuple[ModelSpec, bool]:
    """(the model a helper calls: model=, else [exec] helper_model, else llm-exec's own;
    whether it is llm-exec's own)."""
    from llmtools.config import resolve_model, setting

    name = setting("helper_model", None, flag=model, env="LLMTOOLS_HELPER_MODEL", table="exec", kind=str)
    if name:
        return resolve_model(str(name)), False
    return context_spec(STATE.context), True


def helper_ask(model: str | None):
    """An `ask(messages, schema)` for llmtools.bind, with llm-exec's call options."""
    from llmtools import structured

    context = STATE.context
    options = context.get("request_options") or {}
    spec, own_model = helper_spec(model)
    return structured.asker(spec, tool="llm-exec", log=context.get("log", True),
                            options=structured.CallOptions(
                                max_tokens=options.get("max_tokens"), temperature=options.get("temperature"),
                                # A budget set for llm-exec's model may not suit another one.
                                thinking=options.get("thinking") if own_model else None))


def scopes(value: Any) -> list[Scope]:
    value_messages = as_messages(value)
    task = task_messages()
    variables = variables_message(value)
    return [
        Scope("the value", value_messages),
        Scope("the task", [*task, *value_messages], WIDE_NOTE),
        Scope("the thread's variables", [*task, *([variables] if variables else []), *value_messages], WIDE_NOTE),
    ]


def task_messages() -> list[dict]:
    """What llm-exec was asked (prompt, piped content), as it sent it with this block."""
    return [stack.message("user", stack.text_of(message)) for message in STATE.context.get("task") or []]


def variables_message(value: Any) -> dict | None:
    """The thread's variables in short (not the value itself, nor helpers and modules)."""
    lines: list[str] = []
    used = 0
    helpers = set(STATE.user_helpers) | {"llm_call", "llm_bind", "llm_list_bind", "result", "download",
                                         "pdf", "read_file", "write_file", "helpers"}
    for name, variable in list(STATE.namespace.items()):
        if name.startswith("_") or name in helpers or variable is value or _is_code(variable):
            continue
        line = f"{name} = {_short(variable)}"
        if used + len(line) > VARIABLES_CHARS:
            lines.append("...")
            break
        lines.append(line)
        used += len(line)
    if not lines:
        return None
    return stack.message("user", "Variables of the program so far:\n" + "\n".join(lines))


def _is_code(value: Any) -> bool:
    return isinstance(value, (types.ModuleType, types.FunctionType, types.BuiltinFunctionType, type))


def _short(value: Any) -> str:
    if isinstance(value, Document) and value.source:
        text = f"<document from {value.source}> {value[:VARIABLE_CHARS]}"
    elif isinstance(value, str):
        text = value[:VARIABLE_CHARS + 1]
    else:
        # Bounded as it is made: a variable may hold a million rows.
        limits = reprlib.Repr()
        limits.maxlevel, limits.maxlist, limits.maxdict = 3, 30, 30
        limits.maxstring = limits.maxother = VARIABLE_CHARS // 4
        try:
            text = limits.repr(value)
        except Exception:  # noqa: BLE001  (a user's __repr__ may raise)
            text = f"<{type(value).__name__}>"
    return text if len(text) <= VARIABLE_CHARS else text[:VARIABLE_CHARS] + " [...]"
