"""Running commands in tests: in-process through the real entry wrapper, or as processes."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess

from click.testing import CliRunner

from llmtools.cli.main import run
from tests.conftest import command_path


@dataclasses.dataclass
class Result:
    status: int
    stdout: str
    stderr: str

    def stack(self) -> list[dict]:
        return [json.loads(line) for line in self.stdout.splitlines() if line.strip()]


def run_command(command, args: list[str], input: str | bytes | None = None, prog_name: str = "llm",
                argv_filter=None) -> Result:
    """Run a click command through `run()` exactly as its binary would, streams captured."""
    runner = CliRunner()
    with runner.isolation(input=input) as (out, err, _):
        try:
            run(command, argv_filter(args) if argv_filter else args, prog_name=prog_name)
        except SystemExit as exit_:
            status = exit_.code
    return Result(int(status or 0), out.getvalue().decode(), err.getvalue().decode("utf-8", "replace"))


def run_llm(args: list[str], input: str | bytes | None = None) -> Result:
    from llmtools.cli.llm import cli
    from llmtools.inputs import group_exclusions

    return run_command(cli, args, input, prog_name="llm", argv_filter=group_exclusions)


def run_process(name: str, args: list[str], input: str | bytes | None = None, timeout: float = 60,
                env: dict | None = None) -> Result:
    """Run an installed command as a real process (end-to-end)."""
    data = input.encode() if isinstance(input, str) else input
    completed = subprocess.run([command_path(name), *args], input=data, capture_output=True,
                               timeout=timeout, env={**os.environ, **(env or {})})
    return Result(completed.returncode, completed.stdout.decode("utf-8", "replace"),
                  completed.stderr.decode("utf-8", "replace"))
