"""Options shared by every command that asks a model (llm, llm-exec, llm-map, ...)."""

from __future__ import annotations

import click


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


def model_options(function=None, *, timeout_flag: str = "--timeout"):
    """-m, --temperature, --max-tokens, -z, --timeout: the knobs of one model call.

    A command whose own --timeout means something else (llm-exec: per statement) gives
    the model's wait limit another name with `timeout_flag`; the value still arrives as
    the `timeout` parameter unless the flag names its own destination.
    """
    def decorate(function):
        timeout_name = timeout_flag.lstrip("-").replace("-", "_")
        decorators = [
            click.option("-m", "--model", metavar="MODEL", shell_complete=complete_model_names,
                         help="Model name, alias, local:NAME or .gguf path (default: LLMTOOLS_MODEL, "
                              "then config, then by API key, then the local model)."),
            click.option("--temperature", type=click.FloatRange(0, 2), help="Sampling temperature."),
            click.option("--max-tokens", type=click.IntRange(1), help="Most tokens to generate."),
            click.option("-z", "--thinking", metavar="BUDGET",
                         help="Thinking: a token budget (Anthropic) or low/medium/high (OpenAI)."),
            click.option(timeout_flag, timeout_name, type=click.FloatRange(0, min_open=True),
                         metavar="SECONDS",
                         help="Give up waiting for the model after this long (per attempt)."),
        ]
        for decorator in reversed(decorators):
            function = decorator(function)
        return function

    return decorate(function) if function is not None else decorate
