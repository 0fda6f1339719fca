"""scripts/report.mk: a report from fetched pages, rebuilt by make only when inputs change."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO
from tests.pages import LocalSite

LIMIT_S = 120


@pytest.fixture
def site():
    server = LocalSite(pdf=b"").start()
    yield server
    server.stop()


def make(work, *args: str, model: str = "echo") -> subprocess.CompletedProcess:
    bin_dir = os.path.dirname(sys.executable)
    return subprocess.run(["make", "-f", str(REPO / "scripts" / "report.mk"), f"MODEL={model}",
                           "LLM_FETCH_FLAGS=--no-browser", *args], cwd=work, capture_output=True, text=True,
                          timeout=LIMIT_S, env={**os.environ, "PATH": bin_dir + os.pathsep + os.environ["PATH"]})


def test_the_report_is_built_once_and_again_only_when_an_input_changes(tmp_path, site):
    (tmp_path / "urls.txt").write_text(site.url("/notes.txt") + "\n")
    (tmp_path / "question.txt").write_text("What do the notes say?\n")
    assert make(tmp_path, "-q").returncode == 1  # nothing built yet
    built = make(tmp_path)
    assert built.returncode == 0, built.stderr
    report = (tmp_path / "build" / "report.md").read_text()
    assert "plain notes" in report and "What do the notes say?" in report
    assert make(tmp_path, "-q").returncode == 0  # up to date: nothing to do
    fetched = len(site.requests)
    # The question changes after the build (set the clock back on everything else, rather than wait).
    now = os.stat(tmp_path / "question.txt").st_mtime
    os.utime(tmp_path / "urls.txt", (now - 300, now - 300))
    for built_file in ("pages.jsonl", "report.md"):
        os.utime(tmp_path / "build" / built_file, (now - 200, now - 200))
    assert make(tmp_path, "-q").returncode == 1
    assert make(tmp_path).returncode == 0
    assert len(site.requests) == fetched  # the pages were not fetched again
    assert make(tmp_path, "-q").returncode == 0


def test_a_failed_answer_leaves_no_target_that_looks_done(tmp_path, site):
    (tmp_path / "urls.txt").write_text(site.url("/notes.txt") + "\n")
    (tmp_path / "question.txt").write_text("Summarise.\n")
    replies = tmp_path / "replies.jsonl"
    replies.write_text(json.dumps({"error": "the model is down"}) + "\n")
    failed = make(tmp_path, model=f"script:{replies}")
    assert failed.returncode != 0 and "the model is down" in failed.stderr
    assert not (tmp_path / "build" / "report.md").exists()  # .DELETE_ON_ERROR removed it
    assert (tmp_path / "build" / "pages.jsonl").exists()  # the fetch that worked stays done
    assert make(tmp_path, "-q").returncode == 1
