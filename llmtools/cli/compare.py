"""llm-compare: are two messages the same in substance? (see llm-compare(1))."""

from __future__ import annotations

import click

from llmtools.cli.main import run
from llmtools.cli.options import answer_output_options, log_option, model_options, prompt_options
from llmtools.cli.options import command as llmtools_command
from llmtools.cli.output import AnswerFormat, AnswerWriter, read_stdin_messages
from llmtools.errors import ExitStatus


@llmtools_command("llm-compare")
@click.argument("things", nargs=-1, metavar="[A [B]]")
@click.option("--criteria", metavar="TEXT", help="What counts as the same (e.g. 'the same totals').")
@model_options
@prompt_options(system_help="Extra system instructions (after llm-compare's own).", subject="comparison")
@answer_output_options(stack_help="Write the stack with the verdict as an assistant message.")
@log_option("Do not log the model call.")
def command(things, criteria, model, temperature, max_tokens, thinking, model_timeout, system, paths, no_ignore,
            context, answer_format: AnswerFormat, no_log) -> ExitStatus:
    """Compare A and B in substance; print `true # why` or `false # why`.

    \b
      llm-compare old.md new.md
      if llm-compare -m sonnet "$expected" "$answer"; then echo same; fi
      llm -S "Summarise" < a.txt | llm -S "Summarise differently" | llm-compare

    A and B are files (text, image or PDF) or strings. Without them, the last two
    messages of the stack (stdin, -p, -t) are compared; with one, the stack's last
    message is compared with it. Exit status 0 means the same, 1 different, 2 and up
    an error (76: the model gave no verdict).
    """
    from llmtools import compare, stack, structured

    with compare.verdict_errors():
        messages = _stack(system, paths, context, use_ignore_files=not no_ignore)
        first, second = compare.pick_pair(messages, list(things))
        system_messages = [message for message in messages if message["role"] == "system"]
        spec = _model(model, model_timeout, [*system_messages, first, second])
        ask = structured.asker(spec, tool="llm-compare", log=not no_log, options=structured.CallOptions(
            max_tokens=max_tokens, temperature=temperature, thinking=thinking))
        verdict = compare.compare(first, second, criteria=criteria,
                                  ask=lambda sent, schema: ask([*system_messages, *sent], schema))
    writer = AnswerWriter(answer_format)
    writer.text(verdict.line() + "\n")
    writer.close([*messages, stack.message("assistant", verdict.line(), tool="llm-compare")])
    return verdict.status


def _stack(system, paths, context, *, use_ignore_files: bool) -> list[dict]:
    """stdin, then -p paths, then -t context; -s first."""
    from llmtools import stack
    from llmtools.inputs import path_messages

    from_paths = path_messages(list(paths), use_ignore_files=use_ignore_files) if paths else []
    messages = [*read_stdin_messages(), *from_paths, *(stack.message("user", text) for text in context)]
    if system is not None:
        messages.insert(0, stack.message("system", system))
    return messages


def _model(model, model_timeout, sent: list[dict]):
    """The model, checked against what it is to be sent (images need a vision model)."""
    from llmtools.ask import check_request
    from llmtools.config import resolve_model
    from llmtools.notices import warn
    from llmtools.providers.base import Request

    spec = resolve_model(model)
    if model_timeout is not None:
        spec.timeout = model_timeout
    for warning in check_request(spec, Request(messages=sent)):
        warn(warning)
    return spec


def main() -> None:
    run(command)
