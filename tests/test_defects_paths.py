"""Issues 14 and 12: what `-p` may sweep up, and how `!` words after it are read."""

from __future__ import annotations

import os
import resource
import subprocess

import pytest

from llmtools import inputs
from tests.conftest import command_path
from tests.helpers import run_llm


def run_bounded(args: list[str], cwd, timeout: float = 30) -> subprocess.CompletedProcess:
    """`llm` as a process with 1 GB of address space: a hang or a runaway fails, not the machine."""
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    return subprocess.run([command_path("llm"), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, preexec_fn=limit)


def sources(text: str) -> list[str]:
    import re

    return re.findall(r'<document source=\\?"([^"\\]+)', text)


@pytest.fixture
def tree(tmp_path):
    (tmp_path / "d" / "sub").mkdir(parents=True)
    (tmp_path / "d" / "a.txt").write_text("alpha\n")
    (tmp_path / "d" / "sub" / "b.txt").write_text("beta\n")
    return tmp_path


def test_a_fifo_inside_a_directory_is_skipped_with_a_warning(tree):
    os.mkfifo(tree / "d" / "pipe")
    result = run_bounded(["-m", "echo", "-p", "d", "hi"], cwd=tree)
    assert result.returncode == 0, result.stderr
    assert sources(result.stdout) == ["d/a.txt", "d/sub/b.txt"]
    assert "skipping d/pipe: a FIFO, not a regular file" in result.stderr


def test_a_symlink_cycle_under_a_recursive_glob_ends(tree):
    (tree / "d" / "sub" / "loop").symlink_to("..")
    result = run_bounded(["-m", "echo", "-p", "d/**", "hi"], cwd=tree)
    assert result.returncode == 0, result.stderr
    assert sources(result.stdout) == ["d/a.txt", "d/sub/b.txt"]
    assert "d/sub/loop: a symbolic link to a directory (not followed)" in result.stderr



def test_an_ignored_symlink_to_a_directory_is_not_reported(tree):
    (tree / "d" / "sub" / "loop").symlink_to("..")
    (tree / "d" / ".ignore").write_text("loop\n")
    result = run_bounded(["-m", "echo", "-p", "d", "hi"], cwd=tree)
    assert result.returncode == 0, result.stderr
    assert sources(result.stdout) == ["d/a.txt", "d/sub/b.txt"]
    assert "not followed" not in result.stderr

def test_an_endless_file_is_cut_off_with_advice(tree):
    result = run_bounded(["-m", "echo", "-p", "/dev/zero", "hi"], cwd=tree)
    assert result.returncode == 65, result.stderr
    assert "-p /dev/zero: more than" in result.stderr and "llm-map" in result.stderr


def test_what_one_directory_brings_in_is_capped(tree, monkeypatch):
    monkeypatch.chdir(tree)
    monkeypatch.setattr(inputs, "MAX_PATH_BYTES", 8)
    result = run_llm(["-m", "echo", "-p", "d", "hi"])
    assert result.status == 65
    assert "-p d: more than" in result.stderr and "(at d/sub/b.txt)" in result.stderr


def test_a_prompt_starting_with_a_bang_is_not_an_exclusion(tree, monkeypatch):
    monkeypatch.chdir(tree)
    result = run_llm(["-m", "echo", "-p", "d/a.txt", "!explain this"])
    assert result.status == 0, result.stderr
    assert result.stdout.rstrip().endswith('!explain this"}')


def test_an_exclusion_that_excludes_nothing_warns(tree, monkeypatch):
    monkeypatch.chdir(tree)
    result = run_llm(["-m", "echo", "-p", "d", "!nothing", "hi"])
    assert result.status == 0
    assert "-p !nothing excluded nothing" in result.stderr


@pytest.mark.parametrize("args", [["-p", "d", "!**/*.txt", "hi"], ["-p", "empty", "hi"]])
def test_paths_that_bring_in_no_file_are_a_usage_error(tree, monkeypatch, args):
    (tree / "empty").mkdir()
    monkeypatch.chdir(tree)
    result = run_llm(["-m", "echo", *args])
    assert result.status == 2
    assert "no file to include" in result.stderr


@pytest.fixture
def repo(tmp_path):
    root = tmp_path / "repo"
    for directory in (".git", "build", "sub", "sub/deep"):
        (root / directory).mkdir(parents=True)
    files = {
        ".gitignore": "secret.txt\nbuild/\n*.log\n!keep.log\n/top.md\n",
        "secret.txt": "s", "keep.log": "k", "x.log": "x", "build/o.txt": "o", "main.py": "m",
        "top.md": "t", "sub/top.md": "st", "sub/.gitignore": "!x.log\n", "sub/x.log": "sx",
        "sub/.ignore": "deep/\n", "sub/deep/d.md": "d",
    }
    for name, text in files.items():
        (root / name).write_text(text)
    return tmp_path


def test_a_directory_honours_gitignore_and_ignore_like_ripgrep(repo, monkeypatch):
    monkeypatch.chdir(repo)
    result = run_llm(["-m", "echo", "-p", "repo", "hi"])
    assert result.status == 0, result.stderr
    assert sources(result.stdout) == ["repo/keep.log", "repo/main.py", "repo/sub/top.md", "repo/sub/x.log"]


def test_ignore_files_above_the_named_directory_count(repo, monkeypatch):
    monkeypatch.chdir(repo / "repo" / "sub")
    (repo / "repo" / ".gitignore").write_text("*.md\n")
    result = run_llm(["-m", "echo", "-p", ".", "hi"])
    assert sources(result.stdout) == ["./x.log"]


def test_no_ignore_includes_ignored_files(repo, monkeypatch):
    monkeypatch.chdir(repo)
    result = run_llm(["-m", "echo", "--no-ignore", "-p", "repo", "hi"])
    assert set(sources(result.stdout)) == {
        "repo/build/o.txt", "repo/keep.log", "repo/main.py", "repo/secret.txt", "repo/top.md",
        "repo/x.log", "repo/sub/top.md", "repo/sub/x.log", "repo/sub/deep/d.md"}


def test_gitignore_outside_a_repository_is_not_read_but_ignore_is(repo, monkeypatch):
    monkeypatch.chdir(repo)
    (repo / "repo" / ".git").rmdir()
    result = run_llm(["-m", "echo", "-p", "repo", "hi"])
    assert "repo/secret.txt" in sources(result.stdout)
    assert "repo/sub/deep/d.md" not in sources(result.stdout)


def test_globs_honour_ignore_files_too(repo, monkeypatch):
    monkeypatch.chdir(repo)
    result = run_llm(["-m", "echo", "-p", "repo/**/*.log", "hi"])
    assert sources(result.stdout) == ["repo/keep.log", "repo/sub/x.log"]


def test_a_file_named_explicitly_is_read_even_if_ignored(repo, monkeypatch):
    monkeypatch.chdir(repo)
    result = run_llm(["-m", "echo", "-p", "repo/secret.txt", "hi"])
    assert sources(result.stdout) == ["repo/secret.txt"]


def test_a_glob_without_double_star_stays_at_its_depth(tree, monkeypatch):
    monkeypatch.chdir(tree)
    result = run_llm(["-m", "echo", "-p", "d/*.txt", "hi"])
    assert sources(result.stdout) == ["d/a.txt"]
