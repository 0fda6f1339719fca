"""The options every command shares, so each means the same wherever it appears.

`command` is the skeleton: -h/--help, --version and --debug, the same way everywhere.
The rest are groups a command takes as a whole: `model_options` (one model call),
`prompt_options` (-s -p -t: what is asked), `answer_output_options` (-S -o --raw: how an
answer comes out), `content_output_options` (-o --raw: how content comes out),
`log_option` (-n) and `url_timeout_option`.

A timeout's flag says what it bounds: --model-timeout (one model call, per attempt),
--statement-timeout (one statement in llm-exec's runtime), --url-timeout (one URL).
"""

from __future__ import annotations

import functools

import click

from llmtools import __version__
from llmtools.cli.output import OUTPUT_FORMATS, AnswerFormat

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"]}

SECONDS = click.FloatRange(0, min_open=True)

version_option = click.version_option(
    __version__, "--version", prog_name="llmtools", message="%(prog)s %(version)s",
    help="Print the version and exit.")

# The entry wrapper (`llmtools.cli.main.run`) reads --debug from argv before click parses
# anything, so the flag works wherever it appears and reaches the daemon and workers.
debug_option = click.option(
    "--debug", is_flag=True, expose_value=False,
    help="Show tracebacks for errors, the daemon's and runtime workers' included.")


def _apply(function, decorators):
    for decorator in reversed(decorators):
        function = decorator(function)
    return function


def _options_of(*decorators) -> list[click.Parameter]:
    def carrier() -> None: ...

    _apply(carrier, list(decorators))
    return list(reversed(carrier.__click_params__))  # type: ignore[attr-defined]


class HelpFormatter(click.HelpFormatter):
    """click's help layout and width rule, the width found by `output.terminal_columns`:
    click's own finding imports shutil (~2 ms of every --help)."""

    def __init__(self, indent_increment: int = 2, width: int | None = None, max_width: int | None = None) -> None:
        if width is None and click.formatting.FORCED_WIDTH is None:
            from llmtools.cli.output import terminal_columns

            width = max(min(terminal_columns(), max_width or 80) - 2, 50)
        super().__init__(indent_increment, width, max_width)


class HelpContext(click.Context):
    formatter_class = HelpFormatter


def command(name: str):
    """A top-level command (`llm-fetch`, `llm-exec`, ...) with -h, --version and --debug.

    They are listed last in --help, after the options that are the command's own.
    """
    def decorate(function):
        made = click.command(name, context_settings=CONTEXT_SETTINGS)(function)
        made.context_class = HelpContext
        made.params.extend(_options_of(version_option, debug_option))
        return made

    return decorate


def complete_model_names(ctx, param, incomplete: str):
    """Tab completion for -m: aliases, configured models and the known catalogue."""
    from click.shell_completion import CompletionItem

    from llmtools import config
    from llmtools.providers import catalog

    try:
        settings = config.load_config()
    except Exception:  # a broken config must not break the user's shell
        settings = {}
    names = {"echo", catalog.DEFAULT_LOCAL_MODEL, *catalog.KNOWN_MODELS,
             *config.aliases(settings), *(settings.get("models") or {})}
    return [CompletionItem(name) for name in sorted(names) if name.startswith(incomplete)]


def complete_paths(ctx, param, incomplete: str):
    """Tab completion by the shell's own file names (click's "file" reply)."""
    from click.shell_completion import CompletionItem

    return [CompletionItem(incomplete, type="file")]


def complete_thread_ids(ctx, param, incomplete: str):
    """Tab completion for --thread: the threads `llm-exec --threads` lists (from the log and
    the runtimes' snapshots; the daemon is not asked, so completing never starts it)."""
    from click.shell_completion import CompletionItem

    from llmtools.codeact.threads import list_threads

    try:
        rows = list_threads(None)
    except Exception:  # noqa: BLE001  (no log yet, or a locked one: complete nothing rather than fail)
        return []
    return [CompletionItem(row["id"]) for row in rows if row["id"].startswith(incomplete)]


def complete_conversation_ids(ctx, param, incomplete: str):
    """Tab completion for --cid: the newest conversations in the log."""
    from click.shell_completion import CompletionItem

    from llmtools.logs import open_log
    from llmtools.statedirs import paths

    if not paths().log_db.exists():  # completing must not create the log
        return []
    try:
        store = open_log()
        try:
            ids = store.conversation_ids()
        finally:
            store.close()
    except Exception:  # no log yet, or a locked one: complete nothing rather than fail
        return []
    return [CompletionItem(cid) for cid in ids if cid.startswith(incomplete)]


def model_options(function=None, *, timeout_aliases: tuple[str, ...] = ()):
    """-m, --temperature, --max-tokens, -z, --model-timeout: the knobs of one model call.

    The timeout arrives as `model_timeout`. `timeout_aliases` adds older spellings
    (`llm` keeps --timeout, where it can mean nothing else).
    """
    def decorate(function):
        return _apply(function, [
            click.option("-m", "--model", metavar="MODEL", shell_complete=complete_model_names,
                         help="Model name, alias, local:NAME or .gguf path (default: LLMTOOLS_MODEL, "
                              "then config, then by API key, then the local model)."),
            click.option("--temperature", type=click.FloatRange(0, 2), help="Sampling temperature."),
            click.option("--max-tokens", type=click.IntRange(1), help="Most tokens to generate."),
            click.option("-z", "--thinking", metavar="BUDGET",
                         help="Thinking: a token budget (Anthropic) or low/medium/high (OpenAI)."),
            click.option("--model-timeout", *timeout_aliases, "model_timeout", type=SECONDS,
                         metavar="SECONDS",
                         help="Give up waiting for the model after this long (per attempt)."),
        ])

    return decorate(function) if function is not None else decorate


def prompt_options(*, system_help: str, subject: str = "prompt"):
    """-s, -p, -t: the system prompt, paths and context messages that go with the `subject`."""
    return functools.partial(_apply, decorators=[
        click.option("-s", "--system", metavar="TEXT", help=system_help),
        click.option("-p", "--path", "paths", multiple=True, metavar="PATH|GLOB|URL",
                     shell_complete=complete_paths,
                     help="File, directory, glob or URL to include; repeatable. '!GLOB' right after "
                          "excludes matches."),
        click.option("--no-ignore", is_flag=True,
                     help="With -p: include files that .gitignore or .ignore files exclude."),
        click.option("-t", "--context", multiple=True, metavar="TEXT",
                     help=f"Extra context message, before the {subject}; repeatable."),
    ])


RAW_HELP = ("Write the text as it is, unrendered, even on a terminal "
            "(NO_COLOR or TERM=dumb also turn rendering off).")


def answer_output_options(*, stack_help: str):
    """-S, -o, --raw, given to the command as one `answer_format` (an AnswerFormat)."""
    def decorate(function):
        @functools.wraps(function)
        def with_answer_format(*args, as_stack: bool, output_format: str | None, raw: bool, **kwargs):
            answer_format = AnswerFormat.from_options(as_stack, output_format, raw)
            return function(*args, answer_format=answer_format, **kwargs)

        return _apply(with_answer_format, [
            click.option("-S", "--stack", "as_stack", is_flag=True, help=stack_help),
            click.option("-o", "--output", "output_format", type=click.Choice(OUTPUT_FORMATS),
                         help="text (default) or jsonl (same as -S)."),
            click.option("--raw", is_flag=True, help=RAW_HELP),
        ])

    return decorate


def content_output_options(*, text_help: str):
    """-o, --raw for commands whose product is content: `output_format` and `raw`."""
    return functools.partial(_apply, decorators=[
        click.option("-o", "--output", "output_format", type=click.Choice(OUTPUT_FORMATS),
                     help=f"Output format. Default: a stack (JSON Lines) unless stdout is a "
                          f"terminal, which gets {text_help}."),
        click.option("--raw", is_flag=True, help=RAW_HELP),
    ])


def log_option(help_text: str = "Do not log this exchange."):
    return click.option("-n", "--no-log", is_flag=True, help=help_text)


def url_timeout_option(help_text: str = "Give up on a URL after this long."):
    """--url-timeout (and its older spelling --timeout, the only timeout of these commands)."""
    return click.option("--url-timeout", "--timeout", "url_timeout", type=SECONDS, default=30.0,
                        show_default=True, metavar="SECONDS", help=help_text)
