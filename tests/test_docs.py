"""Every command is documented and completable, and the docs say what the code does."""

from __future__ import annotations

import importlib
import os
import subprocess
import tomllib

import click
import pytest

from tests.conftest import REPO, command_path

SCRIPTS = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]


def click_command(target: str) -> click.Command:
    """The click command behind a console script: `cli` (a group) or `command` in its module."""
    module = importlib.import_module(target.partition(":")[0])
    return getattr(module, "cli", None) or module.command


def all_options(command: click.Command, path: str = "") -> list[tuple[str, str]]:
    found = []
    for param in command.params:
        if isinstance(param, click.Option) and not param.hidden:
            found += [(path, opt) for opt in param.opts + param.secondary_opts]
    if isinstance(command, click.Group):
        context = click.Context(command)
        for name in command.list_commands(context):  # `llm`'s subcommands load on demand
            sub = command.get_command(context, name)
            assert sub is not None
            found += all_options(sub, f"{path} {name}".strip())
    return found


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_each_command_has_a_man_page_completions_and_a_checkout_shim(script):
    man = REPO / "man" / f"{script}.1"
    assert man.exists(), f"man/{script}.1 is missing"
    text = man.read_text()
    assert ".SH EXIT STATUS" in text and ".SH EXAMPLES" in text
    for shell in ("bash", "zsh", "fish"):
        assert (REPO / "completions" / f"{script}.{shell}").exists()
    shim = REPO / "bin" / script
    assert shim.exists() and os.access(shim, os.X_OK)


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_every_option_is_in_the_man_page(script):
    command = click_command(SCRIPTS[script])
    text = (REPO / "man" / f"{script}.1").read_text().replace("\\-", "-")
    missing = [f"{path} {opt}".strip() for path, opt in all_options(command) if opt not in text]
    assert not missing, f"man/{script}.1 does not mention: {missing}"


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_completions_are_generated_from_the_current_command(script):
    variable = "_" + script.upper().replace("-", "_") + "_COMPLETE"
    for shell in ("bash", "zsh", "fish"):
        fresh = subprocess.run([command_path(script)], env={**os.environ, variable: f"{shell}_source"},
                               capture_output=True, text=True, timeout=30).stdout
        assert fresh == (REPO / "completions" / f"{script}.{shell}").read_text(), \
            f"completions/{script}.{shell} is stale: run `make completions`"


def test_model_completion_offers_names_without_importing_an_sdk():
    env = {**os.environ, "COMP_WORDS": "llm -m claude-son", "COMP_CWORD": "2",
           "_LLM_COMPLETE": "bash_complete", "PYTHONPROFILEIMPORTTIME": "1"}
    completed = subprocess.run([command_path("llm")], env=env, capture_output=True, text=True, timeout=30)
    assert "plain,claude-sonnet-4-6" in completed.stdout.splitlines()
    imported = completed.stderr
    assert " anthropic" not in imported and " openai" not in imported


def test_stack_format_page_and_readme_exist():
    assert (REPO / "man" / "llmtools-stack.5").exists()
    readme = (REPO / "README.md").read_text()
    first_block = readme.split("```sh", 1)[1].split("```", 1)[0]
    commands = [line for line in first_block.splitlines() if line.strip()]
    assert len(commands) == 2
    ci = (REPO / ".ci" / "run").read_text()
    assert commands[1].split("#")[0].strip() in ci
