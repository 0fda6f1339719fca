"""`llm`: ask a model. `llm PROMPT` is short for `llm prompt PROMPT`; management lives in
subcommands (`llm models`, `llm logs`, ...)."""

from __future__ import annotations

import importlib
import sys

import click

from llmtools.cli.listen import listen_options
from llmtools.cli.main import run
from llmtools.cli.options import (
    CONTEXT_SETTINGS,
    SECONDS,
    HelpContext,
    answer_output_options,
    complete_conversation_ids,
    debug_option,
    log_option,
    model_options,
    prompt_options,
    version_option,
)

# Subcommands of simonw/llm that users type from habit: sending them to the model as a
# prompt would cost money and answer nothing, so each says what to use here instead.
FOREIGN_SUBCOMMANDS = {
    "keys": "API keys come from the environment (ANTHROPIC_API_KEY, OPENAI_API_KEY) or config.toml "
            "(api_key in [providers.NAME], api_key or api_key_env in [models.NAME]); "
            "see llm(1) CONFIGURATION",
    "templates": "use -s TEXT for a system prompt, or keep a stack file and `cat it.jsonl | llm ...`",
    "aliases": "`llm models aliases` lists them, `llm models alias NAME MODEL` sets one",
    "plugins": "providers are built in (Anthropic, OpenAI, OpenAI-compatible servers by base_url, "
               "local GGUF); `llm models` lists what you can use",
    "embed": "embeddings are used inside llm-map (chunks ranked against the question); "
             "there is no embedding command",
    "similar": "llm-map ranks chunks of your content against a question",
    "collections": "there are no embedding collections; llm-map ranks content it is given",
    "install": "providers are built in; there is nothing to install",
    "uninstall": "providers are built in; there is nothing to uninstall",
}


# The management subcommands load when used, so that a prompt (every pipeline stage) and
# `llm --help` skip their modules: name -> (module, attribute, the first paragraph of its
# help, which `llm --help` lists; a test checks it against the command's own).
LAZY_SUBCOMMANDS = {
    "chat": ("llmtools.cli.chat", "chat_command",
             "Talk with MODEL, turn by turn; each turn is logged as it happens."),
    "daemon": ("llmtools.cli.daemon", "daemon_group",
               "Manage the daemon that keeps models, runtimes and the browser warm."),
    "logs": ("llmtools.cli.logs", "logs_command",
             "Show logged exchanges, oldest first: prompt, answer, model, tokens, cost."),
    "models": ("llmtools.cli.models", "models_group",
               "List models (the default is marked *); manage the default and aliases."),
}


class DefaultGroup(click.Group):
    """A group whose first argument, when it is not a subcommand, starts the default one.

    `llm "hello"`, `llm -m echo hi` and `echo hi | llm` all run `llm prompt ...`, while
    `llm models` and `llm --help` reach the group. A prompt that is exactly a
    subcommand's name needs `llm prompt models`. The subcommands in `lazy` are imported
    when one is run or completed, never to list them in `--help`.
    """

    context_class = HelpContext
    default_command = "prompt"
    group_only = {"--help", "-h", "--version"}
    lazy: dict[str, tuple[str, str, str]] = {}
    _listing = False

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy:
            module, attribute, help_text = self.lazy[cmd_name]
            if self._listing:  # a stand-in with the same help, listed exactly as the command is
                return click.Command(cmd_name, help=help_text)
            self.add_command(getattr(importlib.import_module(module), attribute), cmd_name)
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        self._listing = True
        try:
            super().format_commands(ctx, formatter)
        finally:
            self._listing = False

    def _is_command(self, name: str | None) -> bool:
        return name in self.commands or name in self.lazy

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        # --debug belongs to whatever follows it: `llm --debug models` is the models command.
        first = next((arg for arg in args if arg != "--debug"), None)
        if first is None and ctx.resilient_parsing:
            # Completing `llm <TAB>`: the group's own subcommands and options.
            return super().parse_args(ctx, args)
        if first in FOREIGN_SUBCOMMANDS and not self._is_command(first) and not ctx.resilient_parsing:
            raise click.UsageError(f"`llm {first}` is a command of simonw/llm, not of llmtools: "
                                   f"{FOREIGN_SUBCOMMANDS[first]}. "
                                   f"To ask the model about it, run `llm prompt {first} ...`")
        if first is None or (not self._is_command(first) and first not in self.group_only):
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


cli.lazy = LAZY_SUBCOMMANDS
command = cli  # the name every cli module gives its click command


@cli.command("prompt")
@click.argument("prompt", nargs=-1)
@model_options(timeout_aliases=("--timeout",))
@prompt_options(system_help="System prompt (replaces a leading one from stdin).")
@answer_output_options(stack_help="Write the whole message stack (JSON lines) instead of the answer text.")
@click.option("-c", "--continue", "continue_last", is_flag=True, help="Continue the last conversation.")
@click.option("--cid", metavar="ID", shell_complete=complete_conversation_ids,
              help="Continue the conversation with this id (or id prefix).")
@click.option("--retry", is_flag=True,
              help="Send the conversation's last exchange again (with -c, the default, or --cid).")
@log_option()
@click.option("--url-timeout", type=SECONDS, metavar="SECONDS",
              help="Give up on a -p URL after this long (default: [fetch] timeout in config, else 30).")
@click.option("--profile", is_flag=True,
              help="Print time to first token, total time, tokens/s and cost on stderr.")
@listen_options
@click.option("--no-map", is_flag=True,
              help="A prompt too long for the model's context is cut in the middle instead of read in "
                   "chunks (as llm-map does).")
@click.option("--strict", is_flag=True, help="A prompt too long for the model's context is an error (exit 2).")
@version_option
@debug_option
def prompt_command(prompt, model, temperature, max_tokens, thinking, model_timeout, system, paths, no_ignore,
                   context, answer_format, continue_last, cid, retry, no_log, url_timeout, profile, no_map,
                   strict) -> None:
    """Ask MODEL: PROMPT words, stdin, -p paths and -t context in; the answer out."""
    from llmtools import ask
    from llmtools.cli.answering import answer_prepared
    from llmtools.cli.output import AnswerWriter, read_stdin_messages
    from llmtools.notices import warn

    prepared = ask.prepare(
        ask.PromptParts(prompt=" ".join(prompt) or None, system=system, paths=list(paths),
                        context=list(context), stdin_messages=read_stdin_messages(), url_timeout=url_timeout,
                        use_ignore_files=not no_ignore),
        model=model, timeout=model_timeout, temperature=temperature, max_tokens=max_tokens,
        thinking=thinking, continue_last=continue_last, conversation=cid, retry=retry)
    for warning in prepared.warnings:
        warn(warning)
    answer_prepared(prepared, lambda: AnswerWriter(answer_format), tool="llm", log=not no_log, no_map=no_map,
                    strict=strict, profile=profile)


def main() -> None:
    from llmtools.inputs import group_exclusions

    run(cli, group_exclusions(sys.argv[1:]), prog_name="llm")


if __name__ == "__main__":
    main()
