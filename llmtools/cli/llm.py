"""`llm`: ask a model. `llm PROMPT` is short for `llm prompt PROMPT`; management lives in
subcommands (`llm models`, `llm logs`, ...)."""

from __future__ import annotations

import contextlib
import sys

import click

from llmtools.cli.main import run
from llmtools.cli.options import (
    CONTEXT_SETTINGS,
    answer_output_options,
    debug_option,
    log_option,
    model_options,
    prompt_options,
    version_option,
)
from llmtools.cli.output import AnswerWriter, read_stdin_messages


class DefaultGroup(click.Group):
    """A group whose first argument, when it is not a subcommand, starts the default one.

    `llm "hello"`, `llm -m echo hi` and `echo hi | llm` all run `llm prompt ...`, while
    `llm models` and `llm --help` reach the group. A prompt that is exactly a
    subcommand's name needs `llm prompt models`.
    """

    default_command = "prompt"
    group_only = {"--help", "-h", "--version"}

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        # --debug belongs to whatever follows it: `llm --debug models` is the models command.
        first = next((arg for arg in args if arg != "--debug"), None)
        if first is None or (first not in self.commands and first not in self.group_only):
            args = [self.default_command, *args]
        return super().parse_args(ctx, args)

    def format_usage(self, ctx, formatter) -> None:
        formatter.write_usage(ctx.command_path, "[OPTIONS] [PROMPT]... | COMMAND [ARGS]...")


@click.group(cls=DefaultGroup, context_settings=CONTEXT_SETTINGS)
@version_option
@debug_option
def cli() -> None:
    """Ask a model: the prompt, stdin and -p paths in; the answer streams out.

    \b
      llm "What is a named pipe?"
      git diff | llm "Write a commit message for this"
      llm -p '**/*.py' '!**/__init__.py' "Where is the config parsed?"
      llm -S "Name a colour" | llm -S "Why that one?" | llm "Shorter"

    stdin may be a message stack (JSON lines), plain text, an image or a PDF.
    Run `llm prompt --help` for every option of the default command.
    """


command = cli  # the name every cli module gives its click command


def _profile_line(exchange) -> str:
    outcome = exchange.outcome
    rate_in, rate_out = outcome.tokens_per_second()
    fields = [f"model={exchange.spec.name}"]
    if outcome.ttft_s is not None:
        fields.append(f"ttft={outcome.ttft_s:.3f}s")
    if outcome.total_s is not None:
        fields.append(f"total={outcome.total_s:.3f}s")
    if outcome.input_tokens is not None:
        fields.append(f"in={outcome.input_tokens}tok" + (f" ({rate_in:.1f} tok/s)" if rate_in else ""))
    if outcome.output_tokens is not None:
        fields.append(f"out={outcome.output_tokens}tok" + (f" ({rate_out:.1f} tok/s)" if rate_out else ""))
    fields.append("cost=" + (f"${outcome.cost_usd:.6f}" if outcome.cost_usd is not None else "unknown"))
    return "profile: " + " ".join(fields)


@cli.command("prompt")
@click.argument("prompt", nargs=-1)
@model_options(timeout_aliases=("--timeout",))
@prompt_options(system_help="System prompt (replaces a leading one from stdin).")
@answer_output_options(stack_help="Write the whole message stack (JSON lines) instead of the answer text.")
@click.option("-c", "--continue", "continue_last", is_flag=True, help="Continue the last conversation.")
@click.option("--cid", metavar="ID", help="Continue the conversation with this id (or id prefix).")
@log_option()
@click.option("--profile", is_flag=True,
              help="Print time to first token, total time, tokens/s and cost on stderr.")
@version_option
@debug_option
def prompt_command(prompt, model, temperature, max_tokens, thinking, model_timeout, system, paths, no_ignore,
                   context, answer_format, continue_last, cid, no_log, profile) -> None:
    """Ask MODEL: PROMPT words, stdin, -p paths and -t context in; the answer out."""
    from llmtools import ask
    from llmtools.exchange import Exchange
    from llmtools.notices import warn

    prepared = ask.prepare(
        ask.PromptParts(prompt=" ".join(prompt) or None, system=system, paths=list(paths),
                        context=list(context), stdin_messages=read_stdin_messages(),
                        use_ignore_files=not no_ignore),
        model=model, timeout=model_timeout, temperature=temperature, max_tokens=max_tokens,
        thinking=thinking, continue_last=continue_last, conversation=cid)
    for warning in prepared.warnings:
        warn(warning)
    exchange = Exchange(prepared.spec, prepared.request, tool="llm",
                        conversation_id=prepared.conversation_id, log=not no_log)
    answer = AnswerWriter(answer_format)
    try:
        _stream_answer(exchange, answer)
    finally:
        # Whatever ends the stream (done, Ctrl-C, a cut connection), what arrived is kept:
        # the text is already out; a stack is written with the partial answer marked.
        outcome = exchange.outcome
        worth_a_stack = outcome.text or outcome.status == "ok"
        answer.close([*prepared.request.messages, exchange.assistant_message()] if worth_a_stack else None)
        if profile:
            print(_profile_line(exchange), file=sys.stderr, flush=True)


def _stream_answer(exchange, answer: AnswerWriter) -> None:
    from llmtools.providers.base import TextDelta, ThinkingDelta

    with contextlib.closing(exchange.events()) as events:
        for event in events:
            if isinstance(event, ThinkingDelta):
                answer.thinking(event.text)
            elif isinstance(event, TextDelta):
                answer.text(event.text)


def _register_subcommands() -> None:
    from llmtools.cli import daemon, logs, models

    cli.add_command(models.models_group)
    cli.add_command(logs.logs_command)
    cli.add_command(daemon.daemon_group)


_register_subcommands()


def main() -> None:
    from llmtools.inputs import group_exclusions

    run(cli, group_exclusions(sys.argv[1:]), prog_name="llm")


if __name__ == "__main__":
    main()
