"""llm-bind: bind the stack's content to a function's parameters (see llm-bind(1))."""

from __future__ import annotations

import click

from llmtools.cli.main import run
from llmtools.cli.options import answer_output_options, log_option, model_options, prompt_options
from llmtools.cli.options import command as llmtools_command
from llmtools.cli.output import AnswerFormat, AnswerWriter, read_stdin_messages
from llmtools.errors import UsageError

ITEM_TYPES = ("str", "int", "float", "bool", "object")


@llmtools_command("llm-bind")
@click.argument("signature", required=False, metavar="[SIGNATURE]")
@click.option("--list", "list_description", metavar="DESCRIPTION",
              help="Print a JSON list of what DESCRIPTION names in the content, instead of binding.")
@click.option("--item-type", type=click.Choice(ITEM_TYPES), default="str", show_default=True,
              help="Type of each item of --list.")
@click.option("--json", "as_json", is_flag=True,
              help="Print the bound arguments as a JSON object (missing ones null) instead of the call.")
@model_options
@prompt_options(system_help="Extra system instructions (after llm-bind's own).", subject="llm-bind's instruction")
@answer_output_options(stack_help="Write the stack with the call (or list) as an assistant message.")
@log_option("Do not log the model calls.")
def command(signature, list_description, item_type, as_json, model, temperature, max_tokens, thinking,
            model_timeout, system, paths, no_ignore, context, answer_format: AnswerFormat, no_log) -> None:
    """Bind the content on stdin (and -p, -t) to SIGNATURE, e.g. "f(name, company)".

    \b
      llm-fetch https://example.com/team | llm-bind -t "the CTO" "email(first_name, last_name)"
      llm-bind --list "the people named" < notes.txt

    The call is printed with the bound values. The scope widens until every required
    parameter is bound: the last message, then the whole stack. If one is still missing,
    the call is printed with None for it and the one question that would bind it, and
    the exit status is 1.
    """
    from llmtools import bind, structured

    if (signature is None) == (list_description is None):
        raise UsageError("give a SIGNATURE to bind, or --list DESCRIPTION (one of the two)")
    if as_json and list_description is not None:
        raise UsageError("--json is for a SIGNATURE; --list always prints JSON")
    spec, messages = _prepare(model, model_timeout, system, paths, context, use_ignore_files=not no_ignore)
    ask = structured.asker(spec, tool="llm-bind", log=not no_log, options=structured.CallOptions(
        max_tokens=max_tokens, temperature=temperature, thinking=thinking))
    if list_description is not None:
        items = bind.list_bind(messages, list_description, ask=ask,
                                     item_type=bind.ITEM_TYPES[item_type])
        _write(answer_format, messages, bind.json_text(items))
        return
    binding = bind.bind_stack(messages, signature, ask=ask)
    _write(answer_format, messages, bind.json_text(binding.json_arguments()) if as_json else binding.call_text())
    if not binding.complete:
        raise bind.BindError(binding)


def _prepare(model, model_timeout, system, paths, context, *, use_ignore_files: bool):
    """(the model, the content to bind from: stdin, then -p paths, then -t context)."""
    from llmtools.ask import PromptParts, build_messages, check_request
    from llmtools.config import resolve_model
    from llmtools.notices import warn
    from llmtools.providers.base import Request

    spec = resolve_model(model)
    if model_timeout is not None:
        spec.timeout = model_timeout
    messages = build_messages(PromptParts(system=system, paths=list(paths), context=list(context),
                                          stdin_messages=read_stdin_messages(),
                                          use_ignore_files=use_ignore_files))
    for warning in check_request(spec, Request(messages=messages)):
        warn(warning)
    return spec, messages


def _write(answer_format: AnswerFormat, messages: list[dict], text: str) -> None:
    from llmtools import stack

    writer = AnswerWriter(answer_format)
    writer.text(text + "\n")
    writer.close([*messages, stack.message("assistant", text, tool="llm-bind")])


def main() -> None:
    run(command)
