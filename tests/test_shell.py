"""Shell integration as a user meets it: completions in a real interactive shell (in a pty),
`man` finding the pages after the install step, simonw/llm habits answered, not sent."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pexpect
import pytest

from llmtools.logs import open_log
from tests.conftest import REPO
from tests.helpers import run_llm

SHELL_TIMEOUT = 120  # a cold start of the completing command on a loaded machine


def shell_env(llmtools_home: Path) -> dict:
    """The commands on PATH, importing this checkout's code."""
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}:{REPO / 'bin'}:/usr/bin:/bin",
            "PYTHONPATH": str(REPO), "LLMTOOLS_HOME": str(llmtools_home), "TERM": "dumb",
            "LLMTOOLS_NO_DAEMON": "1", "INPUTRC": "/dev/null", "HOME": str(llmtools_home)}


class InteractiveBash:
    PROMPT = "READY> "

    def __init__(self, cwd: Path, env: dict) -> None:
        self.child = pexpect.spawn("bash", ["--norc", "--noprofile", "-i"], cwd=str(cwd), env=env,
                                   encoding="utf-8", dimensions=(40, 200), timeout=SHELL_TIMEOUT)
        # Quoted in two pieces, so the echo of this line cannot pass for the prompt.
        self.run("PS1='READY''> '; bind 'set show-all-if-ambiguous on'; bind 'set bell-style none'")

    def run(self, line: str) -> None:
        self.child.sendline(line)
        self.child.expect_exact(self.PROMPT)

    def complete(self, partial: str, expected: str) -> None:
        """Type `partial`, press TAB, wait for `expected` to appear, then abandon the line."""
        self.child.send(partial + "\t")
        try:
            self.child.expect_exact(expected)
        finally:
            self.child.sendcontrol("c")
            self.child.expect_exact(self.PROMPT)

    def close(self) -> None:
        self.child.sendline("exit")
        self.child.expect(pexpect.EOF)


@pytest.fixture
def bash(tmp_path, llmtools_home):
    work = tmp_path / "work"
    work.mkdir()
    (work / "testfile.txt").write_text("hello\n")
    (work / "cookies.txt").write_text("# Netscape HTTP Cookie File\n")
    shell = InteractiveBash(work, shell_env(llmtools_home))
    for name in ("llm", "llm-pdf", "llm-fetch", "llm-exec"):
        shell.run(f"source {REPO / 'completions' / (name + '.bash')}")
    yield shell
    shell.close()


def test_bash_completes_paths_for_p_files_and_cookies(bash):
    bash.complete("llm -p ./te", "./testfile.txt")
    bash.complete("llm-pdf ./te", "./testfile.txt")
    bash.complete("llm-exec -p ./te", "./testfile.txt")
    bash.complete("llm-fetch --cookies ./coo", "./cookies.txt")


def test_bash_completes_subcommands_and_version_at_the_top(bash):
    bash.complete("llm mod", "llm models")
    bash.complete("llm --vers", "llm --version")


def test_bash_completes_conversation_and_thread_ids(bash, llmtools_home):
    assert run_llm(["-m", "echo", "hi"]).status == 0
    cid = open_log().recent(1)[0]["conversation_id"]
    bash.complete(f"llm --cid {cid[:3]}", cid)
    from llmtools.runtime.manager import RuntimeManager

    with RuntimeManager() as manager:  # a thread with a snapshot, where llm-exec keeps it
        assert manager.execute("workbench", "x = 1", timeout=20)["ok"]
    bash.complete("llm-exec --thread workb", "workbench")


class InteractiveOtherShell:
    """zsh or fish, interactive in a pty, with no user config and our completions loaded."""

    PROMPT = "READY> "

    def __init__(self, shell: str, cwd: Path, env: dict) -> None:
        env = {**env, "TERM": "xterm"}  # both line editors want a real terminal type
        if shell == "zsh":
            args = ["-f", "-i"]
            setup = "PS1='READY''> '; autoload -Uz compinit && compinit -u -D"
            load = "source {}"
        else:
            args = ["--no-config", "-i"]
            setup = "function fish_prompt; echo 'READY''> '; end"
            load = "source {}"
        self.child = pexpect.spawn(shell, args, cwd=str(cwd), env=env, encoding="utf-8",
                                   dimensions=(40, 200), timeout=SHELL_TIMEOUT)
        scripts = "; ".join(load.format(REPO / "completions" / f"{name}.{shell}") for name in ("llm", "llm-pdf"))
        self.child.sendline(f"{setup}; {scripts}")
        self.child.expect_exact(self.PROMPT)

    def complete(self, partial: str, expected: str) -> None:
        self.child.send(partial + "\t")
        self.child.expect_exact(expected)

    def close(self) -> None:
        self.child.terminate(force=True)


@pytest.mark.parametrize("shell", ["zsh", "fish"])
@pytest.mark.parametrize("partial, expected", [
    ("llm -p ./te", "testfile.txt"), ("llm-pdf ./te", "testfile.txt"), ("llm mod", "models")])
def test_zsh_and_fish_complete_paths_and_subcommands(shell, partial, expected, tmp_path, llmtools_home):
    """A fresh shell for each line: a line editor's Ctrl-C is not a reliable reset."""
    if shutil.which(shell) is None:
        pytest.skip(f"{shell} is not installed")
    work = tmp_path / "work"
    work.mkdir()
    (work / "testfile.txt").write_text("hello\n")
    session = InteractiveOtherShell(shell, work, shell_env(llmtools_home))
    try:
        session.complete(partial, expected)
    finally:
        session.close()


def test_man_finds_every_page_after_the_install_step(tmp_path):
    mandir = tmp_path / "share" / "man"
    subprocess.run(["make", "-s", "-C", str(REPO), "man", f"MANDIR={mandir}"], check=True,
                   capture_output=True, timeout=60)
    env = {**os.environ, "MANPATH": str(mandir)}
    for page in ("llm", "llm-pdf", "llm-fetch", "llm-exec", "llmtools-stack", "llmtools"):
        found = subprocess.run(["man", "-w", page], env=env, capture_output=True, text=True, timeout=30)
        assert found.returncode == 0, (page, found.stderr)
        assert found.stdout.startswith(str(mandir))
    # With the install's bin/ on PATH and no MANPATH, man-db finds ../share/man by itself.
    (tmp_path / "bin").mkdir()
    env = {key: value for key, value in os.environ.items() if key != "MANPATH"}
    env["PATH"] = f"{tmp_path / 'bin'}:/usr/bin:/bin"
    found = subprocess.run(["man", "-w", "llmtools"], env=env, capture_output=True, text=True, timeout=30)
    assert found.stdout.strip() == str(mandir / "man7" / "llmtools.7")


@pytest.mark.parametrize("argv, hint", [
    (["keys", "set", "openai"], "OPENAI_API_KEY"),
    (["templates"], "-s TEXT"),
    (["aliases", "list"], "llm models aliases"),
    (["plugins"], "llm models"),
    (["embed", "-m", "x", "text"], "llm-map"),
])
def test_simonw_llm_habits_are_answered_not_sent(argv, hint):
    result = run_llm(argv)
    assert result.status == 2
    assert hint in result.stderr and f"llm prompt {argv[0]}" in result.stderr
    assert open_log().count() == 0


def test_llm_prompt_word_still_asks_it():
    result = run_llm(["prompt", "-m", "echo", "keys"])
    assert result.status == 0 and '"content": "keys"' in result.stdout
