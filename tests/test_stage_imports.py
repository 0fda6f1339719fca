"""What one pipeline stage imports: `llm -m echo hi` is the floor every stage pays.

A module joining this path costs every stage of every pipeline. This test names the
modules the path imports today; one that appears without being added here fails it, so
whoever adds it decides (import it inside the function that needs it, or add it below and
say why in the commit). The standard library is left out: what it pulls in varies by
Python version.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys

import pytest

from tests.fakes import Reply
from tests.fakes.fixtures import anthropic_server  # noqa: F401  (fixture)
from tests.fakes.llama_server import smollm2, smollm2_gguf  # noqa: F401  (fixtures)
from tests.helpers import run_process

# llmtools modules on the echo path (logged), in alphabetical order.
ECHO_PATH_MODULES = {
    "llmtools", "llmtools.ask", "llmtools.cli", "llmtools.cli.answering", "llmtools.cli.listen", "llmtools.cli.main",
    "llmtools.cli.options", "llmtools.cli.output", "llmtools.config", "llmtools.detect",
    "llmtools.errors", "llmtools.exchange", "llmtools.inputs", "llmtools.logs", "llmtools.mapping",
    "llmtools.mapping.limits", "llmtools.mapping.overflow", "llmtools.notices",
    "llmtools.providers", "llmtools.providers.base", "llmtools.providers.catalog",
    "llmtools.providers.echo", "llmtools.providers.retry", "llmtools.services", "llmtools.stack",
    "llmtools.statedirs", "llmtools.terminal",
}
# Packages from outside the standard library: click and nothing else.
ECHO_PATH_PACKAGES = {"click"}

PROBE = """
import json, runpy, sys
before = set(sys.modules)
sys.argv = ["llm", *sys.argv[1:]]
try:
    runpy.run_module("llmtools.cli.llm", run_name="__main__")
except SystemExit:
    pass
added = sorted(name for name in sys.modules if name not in before)
print(json.dumps(added), file=sys.stderr)
"""



def imported_by_llm(args: list[str], env: dict | None = None) -> tuple[set[str], set[str]]:
    """(llmtools modules, packages from outside the standard library) that `llm ARGS` imports."""
    done = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})
    assert done.returncode == 0, done.stderr
    added = json.loads(done.stderr.strip().splitlines()[-1])
    ours = {name for name in added if name == "llmtools" or name.startswith("llmtools.")}
    packages = {name.split(".")[0] for name in added
                if name.split(".")[0] not in sys.stdlib_module_names and not name.startswith(("llmtools", "_"))}
    return ours, packages


def test_the_echo_path_imports_only_what_it_is_known_to(llmtools_home):
    ours, packages = imported_by_llm(["-m", "echo", "hi"], {"LLMTOOLS_NO_DAEMON": "1"})
    assert ours - ECHO_PATH_MODULES == set(), "new on the echo path: import it where it is needed, or list it"
    assert packages - ECHO_PATH_PACKAGES == set(), "a package joined every pipeline stage"
    assert "llmtools.logs" in ours  # the probe did run the logged path


# `llm --help`: the group and its options; the subcommands are listed, not imported.
HELP_PATH_MODULES = {
    "llmtools", "llmtools.cli", "llmtools.cli.listen", "llmtools.cli.main", "llmtools.cli.options",
    "llmtools.cli.output", "llmtools.errors", "llmtools.inputs", "llmtools.notices", "llmtools.terminal",
}


def test_help_imports_only_what_it_shows(llmtools_home):
    ours, packages = imported_by_llm(["--help"], {"LLMTOOLS_NO_DAEMON": "1"})
    assert ours - HELP_PATH_MODULES == set(), "new on the --help path: import it where it is needed, or list it"
    assert packages - ECHO_PATH_PACKAGES == set()
    assert "llmtools.cli.main" in ours  # the probe did run the command


def test_each_subcommand_is_listed_with_its_own_help():
    import click

    from llmtools.cli.llm import LAZY_SUBCOMMANDS, cli

    context = click.Context(cli)
    for name, (module, attribute, listed) in LAZY_SUBCOMMANDS.items():
        command = getattr(importlib.import_module(module), attribute)
        assert cli.get_command(context, name) is command
        assert listed == command.help.split("\n\n")[0], f"update LAZY_SUBCOMMANDS[{name!r}]"
        assert command.short_help is None and not command.hidden and not command.deprecated


# A model call handed to the warm daemon: the echo path's modules less the in-process
# provider, plus the client. The provider's module, its SDK, the content stack and the
# tokenizer are the daemon's to import, never the client's.
DAEMON_CLIENT_MODULES = (ECHO_PATH_MODULES - {"llmtools.providers.echo", "llmtools.providers.retry"}) | {
    "llmtools.daemon", "llmtools.daemon.client", "llmtools.daemon.protocol", "llmtools.daemon.remote",
}
# A local model's file is found (and pulled on first use) by the client, so that a pull
# shows its progress on the user's terminal; its context size comes from the GGUF header.
LOCAL_CLIENT_MODULES = DAEMON_CLIENT_MODULES | {
    "llmtools.localmodels", "llmtools.localmodels.catalog", "llmtools.localmodels.gguf",
}


def assert_a_thin_client(ours: set[str], packages: set[str], allowed: set[str]) -> None:
    assert "llmtools.daemon.remote" in ours  # the call did go to the daemon
    providers = {name for name in ours if name.startswith("llmtools.providers.")}
    assert providers <= {"llmtools.providers.base", "llmtools.providers.catalog"}, providers
    assert not {name for name in ours if name.startswith(("llmtools.content", "llmtools.runtime"))}
    assert "llmtools.mapping.tokens" not in ours
    assert packages - ECHO_PATH_PACKAGES == set(), "a package joined the daemon client's path"
    assert ours - allowed == set(), "new on the daemon client's path: import it where it is needed, or list it"


@pytest.fixture
def warm_daemon(monkeypatch, llmtools_home):
    monkeypatch.delenv("LLMTOOLS_NO_DAEMON")
    started = run_process("llm", ["daemon", "start"])
    assert started.status == 0, started.stderr


def test_a_call_through_the_warm_daemon_imports_no_provider_stack(anthropic_server, monkeypatch,  # noqa: F811
                                                                   warm_daemon):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", anthropic_server.base_url)
    anthropic_server.script(Reply(text="warm"), Reply(text="warm again"))
    assert run_process("llm", ["-m", "claude-sonnet-4-6", "warm up"]).status == 0
    assert_a_thin_client(*imported_by_llm(["-m", "claude-sonnet-4-6", "hi"]), DAEMON_CLIENT_MODULES)


def test_a_local_model_through_the_warm_daemon_imports_no_provider_stack(smollm2, warm_daemon):  # noqa: F811
    args = ["-m", str(smollm2), "--max-tokens", "1", "--temperature", "0", "hi"]
    assert_a_thin_client(*imported_by_llm(args), LOCAL_CLIENT_MODULES)


@pytest.mark.parametrize("columns", [None, "30", "60", "100", "0", "wide"])
def test_help_is_as_wide_as_clicks_own_rule_makes_it(monkeypatch, columns):
    """--help finds its width without shutil, by the rule click's formatter uses."""
    import click

    from llmtools.cli.options import HelpFormatter

    if columns is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", columns)
    for max_width in (None, 60, 120):
        assert HelpFormatter(max_width=max_width).width == click.HelpFormatter(max_width=max_width).width
