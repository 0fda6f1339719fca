"""Issue 14: the fallback runtime directory is created and checked without following links."""

from __future__ import annotations

import os
import stat

import pytest

from llmtools import statedirs
from llmtools.errors import UsageError


@pytest.fixture
def fallback_runtime(tmp_path, monkeypatch):
    """No LLMTOOLS_HOME and no XDG_RUNTIME_DIR, as under cron: the temp-dir fallback is used."""
    shared_tmp = tmp_path / "tmp"
    shared_tmp.mkdir()
    monkeypatch.delenv("LLMTOOLS_HOME")
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    monkeypatch.setenv("TMPDIR", str(shared_tmp))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    path = statedirs.paths().runtime_dir
    assert path == shared_tmp / f"llmtools-{os.getuid()}"
    return path


def test_a_planted_symlink_is_refused_and_its_target_left_alone(fallback_runtime, tmp_path):
    victim = tmp_path / "victim"
    victim.mkdir(mode=0o755)
    victim.chmod(0o755)
    fallback_runtime.symlink_to(victim)
    with pytest.raises(UsageError, match="not a real directory"):
        statedirs.ensure_private_dir(fallback_runtime)
    assert stat.S_IMODE(victim.stat().st_mode) == 0o755
    assert list(victim.iterdir()) == []


def test_a_dangling_symlink_is_not_followed_to_create_its_target(fallback_runtime, tmp_path):
    target = tmp_path / "elsewhere"
    fallback_runtime.symlink_to(target)
    with pytest.raises(UsageError):
        statedirs.ensure_private_dir(fallback_runtime)
    assert not target.exists()


def test_a_file_in_its_place_is_refused(fallback_runtime):
    fallback_runtime.write_text("")
    with pytest.raises(UsageError, match="not a real directory"):
        statedirs.ensure_private_dir(fallback_runtime)


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to make a directory another user owns")
def test_a_directory_of_another_user_is_refused(fallback_runtime):
    fallback_runtime.mkdir(mode=0o700)
    os.chown(fallback_runtime, 65534, 65534)
    with pytest.raises(UsageError, match="another user"):
        statedirs.ensure_private_dir(fallback_runtime)


def test_a_fresh_directory_is_ours_with_mode_0700(fallback_runtime):
    old_umask = os.umask(0)
    try:
        statedirs.ensure_private_dir(fallback_runtime)
    finally:
        os.umask(old_umask)
    info = os.lstat(fallback_runtime)
    assert stat.S_ISDIR(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o700
    assert info.st_uid == os.getuid()


@pytest.mark.parametrize("before, after", [(0o500, 0o500), (0o755, 0o700), (0o570, 0o500), (0o700, 0o700)])
def test_only_group_and_other_bits_are_taken_away(tmp_path, before, after):
    # A data directory the user made read-only stays read-only: its log is then "not logged" (74).
    path = tmp_path / "data"
    path.mkdir()
    path.chmod(before)
    try:
        statedirs.ensure_private_dir(path)
        assert stat.S_IMODE(path.stat().st_mode) == after
    finally:
        path.chmod(0o700)
