"""Pages that fill themselves in after "load": the fetch waits for the DOM to settle, warns
when what it got still looks like a placeholder, and says what it is doing on slow runs."""

from __future__ import annotations

import time

import pytest

from llmtools.content import rendering
from llmtools.content.browser import Browser
from llmtools.content.fetch import fetch_each
from llmtools.notices import notices_to
from tests.helpers import run_llm, run_process
from tests.pages import LocalSite
from tests.pdfs import TEXT_LINES, TextPage, write_pdf

FILLED_TEXT = "Tonnage rose by a tenth"


@pytest.fixture(scope="module")
def site():
    server = LocalSite(pdf=write_pdf([TextPage(TEXT_LINES)])).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser():
    shared = Browser()
    yield shared
    shared.close()


def fetch_with_notices(url: str, browser, timeout: float = 15) -> tuple[dict, list[str], float]:
    told: list[str] = []
    started = time.monotonic()
    with notices_to(lambda level, message: told.append(message)):
        [result] = fetch_each([url], browser=browser, timeout=timeout)
    assert result.error is None, result.error
    return result.message, told, time.monotonic() - started


@pytest.mark.parametrize("delay_ms", [300, 2000])
def test_a_page_filled_in_after_load_is_read_once_filled(site, browser, delay_ms):
    message, told, _ = fetch_with_notices(site.url(f"/filled-after/{delay_ms}"), browser)
    assert FILLED_TEXT in message["content"] and "Loading..." not in message["content"]
    assert told == []


def test_a_page_that_never_stops_changing_is_taken_within_the_timeout(site, browser):
    message, told, took = fetch_with_notices(site.url("/ticking"), browser, timeout=3)
    assert "Live tide gauge" in message["content"]
    assert took < 3 + 1.5  # the settle gave up inside the request's own timeout
    assert len(told) == 1 and "still changing after" in told[0]


def test_a_placeholder_that_outlasts_the_settle_warns(site, browser, monkeypatch):
    monkeypatch.setattr(rendering, "SETTLE_MAX_S", 0.5)  # give up long before the 2 s fill
    message, told, _ = fetch_with_notices(site.url("/filled-after/2000"), browser)
    assert "Loading..." in message["content"]
    [warning] = told
    assert "looks like a placeholder (" in warning and "Loading..." in warning and "--wait-for" in warning


def test_slow_runs_get_one_progress_line_per_url(site, monkeypatch):
    monkeypatch.setenv("LLMTOOLS_NO_DAEMON", "1")
    from tests.test_fetch import invoke

    slow = invoke(["-o", "text", site.url("/filled-after/1500"), site.url("/notes.txt")])
    assert slow.exit_code == 0, slow.stderr
    lines = [line for line in slow.stderr.splitlines() if "fetching" in line]
    assert lines == [f"llm-fetch: fetching {site.url('/filled-after/1500')} (1/2)",
                     f"llm-fetch: fetching {site.url('/notes.txt')} (2/2)"]


def test_a_quick_run_prints_no_progress(site, monkeypatch):
    from llmtools.content import progress_lines
    from tests.test_fetch import invoke

    monkeypatch.setattr(progress_lines, "AFTER_S", 3600.0)
    quick = invoke(["-o", "text", "--no-browser", site.url("/notes.txt")])
    assert quick.exit_code == 0 and quick.stderr == ""


def test_llm_p_url_takes_a_fetch_timeout_flag_and_config_key(site, write_config):
    hang = site.url("/hang")
    started = time.monotonic()
    result = run_llm(["-m", "echo", "-p", hang, "--url-timeout", "1", "q"])
    assert result.status == 75 and "timed out after 1 s" in result.stderr
    write_config("[fetch]\ntimeout = 1.5\n")
    result = run_llm(["-m", "echo", "-p", hang, "q"])
    assert result.status == 75 and "timed out after 1.5 s" in result.stderr
    assert time.monotonic() - started < 20



def test_chat_and_its_p_command_fetch_with_the_same_timeout_and_progress_line(site, write_config):
    # One fetcher for every -p URL: llm chat -p and /p (as llm-map and llm-compare) honour
    # [fetch] timeout and say what they wait for, as llm -p does.
    hang = site.url("/hang")
    write_config("[fetch]\ntimeout = 1.5\n")
    started = time.monotonic()
    at_start = run_process("llm", ["chat", "--no-pipe", "-m", "echo", "-p", hang], input="q\n")
    assert at_start.status == 75 and "timed out after 1.5 s" in at_start.stderr
    assert f"llm: fetching {hang}" in at_start.stderr
    in_chat = run_process("llm", ["chat", "--no-pipe", "-m", "echo"], input=f"/p {hang}\nstill here\n",
                          env={"LLMTOOLS_FETCH_TIMEOUT": "1"})
    assert in_chat.status == 0 and "timed out after 1 s" in in_chat.stderr
    assert '"content": "still here"' in in_chat.stdout
    assert time.monotonic() - started < 30

# --- extraction: link-density pruning -------------------------------------------------------

def test_link_lists_and_big_link_sidebars_are_dropped_but_prose_links_kept():
    from llmtools.content.html import html_to_markdown

    chapters = "".join(f'<li><a href="/c/{n}">Chapter {n} of the manual</a></li>' for n in range(1, 31))
    html = f"""<html><body>
    <div class="md-sidebar"><ul>{chapters}</ul></div>
    <div class="x7f"><a href="/a">Alpha</a> <a href="/b">Beta</a> <a href="/c">Gamma</a>
      <a href="/d">Delta</a> <a href="/e">Epsilon</a></div>
    <h1>Configure the cache</h1>
    <p>The cache keeps hot objects; see <a href="/sizing">sizing</a> and <a href="/eviction">eviction</a>
    for how much memory it takes and what it drops first when full.</p>
    </body></html>"""
    markdown = html_to_markdown(html, base_url="https://example.org/").markdown
    assert "Chapter 12 of the manual" not in markdown  # a sidebar of links, however long
    assert "Epsilon" not in markdown  # five links and nothing else, under an unknown class
    assert "[sizing](https://example.org/sizing)" in markdown and "what it drops first" in markdown
