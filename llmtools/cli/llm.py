"""`llm`: ask a model. `llm PROMPT` is short for `llm prompt PROMPT`; management lives in
subcommands (`llm models`, `llm logs`, ...)."""

from __future__ import annotations

import contextlib
import sys

import click

from llmtools import __version__
from llmtools.cli.main import debug_option, run
from llmtools.cli.options import model_options
from llmtools.cli.output import OUTPUT_FORMATS, TextWriter, read_stdin_messages, write_stack


class DefaultGroup(click.Group):
    """A group whose first argument, when it is not a subcommand, starts the default one.

    `llm "hello"`, `llm -m echo hi` and `echo hi | llm` all run `llm prompt ...`, while
    `llm models` and `llm --help` reach the group. A prompt that is exactly a
    subcommand's name needs `llm prompt models`.
    """

    default_command = "prompt"

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        group_only = {"--help", "-h", "--version"}
        if not args or (args[0] not in self.commands and args[0] not in group_only):
            args = [self.default_command, *args]
        return super().parse_args(ctx, args)

    def format_usage(self, ctx, formatter) -> None:
        formatter.write_usage(ctx.command_path, "[OPTIONS] [PROMPT]... | COMMAND [ARGS]...")


@click.group(cls=DefaultGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="llmtools", message="%(prog)s %(version)s")
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


def _show_thinking(text: str) -> None:
    styled = f"\x1b[2m{text}\x1b[0m" if sys.stderr.isatty() else text
    sys.stderr.write(styled)
    sys.stderr.flush()


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
@model_options
@click.option("-s", "--system", metavar="TEXT", help="System prompt (replaces a leading one from stdin).")
@click.option("-p", "--path", "paths", multiple=True, metavar="PATH|GLOB|URL",
              help="File, directory, glob or URL to include; repeatable. '!GLOB' right after "
                   "excludes matches.")
@click.option("-t", "--context", multiple=True, metavar="TEXT",
              help="Extra context message, before the prompt; repeatable.")
@click.option("-S", "--stack", "as_stack", is_flag=True,
              help="Write the whole message stack (JSON lines) instead of the answer text.")
@click.option("-o", "--output", "output_format", type=click.Choice(OUTPUT_FORMATS),
              help="text (default) or jsonl (same as -S).")
@click.option("-c", "--continue", "continue_last", is_flag=True, help="Continue the last conversation.")
@click.option("--cid", metavar="ID", help="Continue the conversation with this id (or id prefix).")
@click.option("-n", "--no-log", is_flag=True, help="Do not log this exchange.")
@click.option("--profile", is_flag=True,
              help="Print time to first token, total time, tokens/s and cost on stderr.")
@debug_option
def prompt_command(prompt, model, temperature, max_tokens, thinking, timeout, system, paths, context,
                   as_stack, output_format, continue_last, cid, no_log, profile) -> None:
    """Ask MODEL: PROMPT words, stdin, -p paths and -t context in; the answer out."""
    from llmtools import ask
    from llmtools.exchange import Exchange
    from llmtools.notices import warn
    from llmtools.providers.base import TextDelta, ThinkingDelta

    prepared = ask.prepare(
        ask.PromptParts(prompt=" ".join(prompt) or None, system=system, paths=list(paths),
                        context=list(context), stdin_messages=read_stdin_messages()),
        model=model, timeout=timeout, temperature=temperature, max_tokens=max_tokens,
        thinking=thinking, continue_last=continue_last, conversation=cid)
    for warning in prepared.warnings:
        warn(warning)
    spec, request, messages = prepared.spec, prepared.request, prepared.request.messages
    exchange = Exchange(spec, request, tool="llm", conversation_id=prepared.conversation_id,
                        log=not no_log)
    stack_output = as_stack or output_format == "jsonl"
    writer = None if stack_output else TextWriter()
    thinking_open = False
    try:
        with contextlib.closing(exchange.events()) as events:
            for event in events:
                if isinstance(event, ThinkingDelta):
                    _show_thinking(event.text)
                    thinking_open = True
                elif isinstance(event, TextDelta):
                    if thinking_open:
                        _show_thinking("\n")
                        thinking_open = False
                    if writer is not None:
                        writer.write(event.text)
    finally:
        # Whatever ends the stream (done, Ctrl-C, a cut connection), what arrived is kept:
        # the text is already out; a stack is written with the partial answer marked.
        if writer is not None:
            writer.close()
        elif exchange.outcome.text or exchange.outcome.status == "ok":
            write_stack([*messages, exchange.assistant_message()])
        if profile:
            print(_profile_line(exchange), file=sys.stderr, flush=True)


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
