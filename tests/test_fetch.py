"""llm-fetch against a real site on 127.0.0.1, in Debian's Chromium and over plain HTTP."""

from __future__ import annotations

import base64
import io
import json
import shutil
import socket
import ssl
import subprocess
import sys
import threading

import click
import pytest
from click.testing import CliRunner

from llmtools import stack
from llmtools.cli import fetch as fetch_cli
from llmtools.cli.main import run
from llmtools.content import cookies as cookies_module
from llmtools.content.browser import Browser, BrowserUnavailable
from llmtools.content.fetch import fetch_each, fetch_message
from llmtools.content.html import html_to_markdown
from llmtools.errors import ExitStatus, InputError, LlmtoolsError, worst_status
from llmtools.notices import notices_to
from tests.conftest import REPO, command_path
from tests.pages import FORECAST, LocalSite, cookies_txt
from tests.pdfs import TEXT_LINES, TextPage, write_pdf

RENDERERS = ["chromium", "http"]


@pytest.fixture(scope="module")
def site():
    server = LocalSite(pdf=write_pdf([TextPage(TEXT_LINES)])).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser():
    """One Chromium for the module, kept warm across tests as the daemon will keep it."""
    shared = Browser()
    yield shared
    shared.close()


@pytest.fixture
def fetch(browser):
    """fetch(url, renderer, **options) -> FetchResult, through the warm browser or httpx."""
    def run_fetch(url: str, renderer: str = "chromium", **options):
        told: list[tuple[str, str]] = []
        options.setdefault("timeout", 10)
        with notices_to(lambda level, message: told.append((level, message))):
            [result] = fetch_each([url], browser=browser if renderer == "chromium" else None,
                                  use_browser=renderer == "chromium", **options)
        assert told == [], told
        return result
    return run_fetch


@pytest.fixture
def cookie_file(tmp_path):
    path = tmp_path / "cookies.txt"
    path.write_text(cookies_txt())
    return str(path)


def invoke(args: list[str], input: str | None = None):
    """Run llm-fetch in-process through the shared entry wrapper (exit statuses included)."""
    @click.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
    @click.pass_context
    def through_wrapper(ctx):
        run(fetch_cli.command, list(ctx.args), prog_name="llm-fetch")

    return CliRunner().invoke(through_wrapper, args, input=input, catch_exceptions=False)


# --- what a page becomes -------------------------------------------------------------------


@pytest.mark.parametrize("renderer", RENDERERS)
def test_article_keeps_headings_and_links_and_drops_page_furniture(site, fetch, renderer):
    result = fetch(site.url("/article"), renderer)
    assert result.error is None
    msg = result.message
    assert stack.validation_error(msg) is None
    text = msg["content"]
    assert text.startswith("# Tidal Gardens of the Northern Coast\n")
    assert "\n## Counting urchins by hand\n" in text
    assert "[Coastal Research Institute](https://example.org/institute)" in text
    # Relative links come out absolute, against the page's own URL.
    assert f"[Journal of Marine Ecology]({site.url('/journals/marine-ecology')})" in text
    assert "- Forty permanent sites, marked with steel pins" in text
    assert "> We expected temperature to dominate." in text
    for furniture in ("We use cookies", "Subscribe", "Trending now", "cheap flights", "Copyright",
                      "Privacy policy", "dataLayer", "track(", "font-family", "enable JavaScript"):
        assert furniture not in text, furniture
    assert msg["meta"]["source"] == site.url("/article")
    assert msg["meta"]["tool"] == "llm-fetch"
    assert msg["meta"]["title"] == "Tidal Gardens of the Northern Coast - The Field Journal"
    assert msg["meta"]["renderer"] == renderer


def test_script_written_content_needs_the_browser(site, fetch):
    rendered = fetch(site.url("/scripted"), "chromium").message["content"]
    assert "# Harbour forecast" in rendered
    assert FORECAST["summary"] in rendered  # arrived by fetch() after the load event

    told: list[tuple[str, str]] = []
    with notices_to(lambda level, message: told.append((level, message))):
        [result] = fetch_each([site.url("/scripted")], use_browser=False, timeout=10)
    plain = result.message["content"]
    assert "Harbour forecast" not in plain
    assert FORECAST["summary"] not in plain
    assert "Loading..." in plain
    [(level, warning)] = told  # the placeholder is not taken silently
    assert level == "warning" and "looks like a placeholder ('# Forecast Loading...')" in warning
    assert "drop --no-browser" in warning


def test_wait_for_waits_for_a_selector(site, fetch):
    result = fetch(site.url("/delayed"), wait_for=".late-arrival")
    assert "The late paragraph has arrived." in result.message["content"]


def test_wait_for_a_selector_that_never_comes_times_out(site, fetch):
    result = fetch(site.url("/delayed"), wait_for="#never-there", timeout=1.5)
    assert result.status == ExitStatus.TEMPORARY_FAILURE
    assert "#never-there" in str(result.error)


def test_wait_for_an_invalid_selector_is_a_usage_error(site, fetch):
    result = fetch(site.url("/delayed"), wait_for="div[[")
    assert result.status == ExitStatus.USAGE


def test_screenshot_adds_the_rendered_page_as_a_png_part(site, fetch):
    from PIL import Image

    msg = fetch(site.url("/article"), screenshot=True).message
    text_part, image_part = msg["content"]
    assert text_part["type"] == "text" and "# Tidal Gardens" in text_part["text"]
    assert image_part["type"] == "image" and image_part["media_type"] == "image/png"
    image = Image.open(io.BytesIO(base64.b64decode(image_part["data"])))
    assert image.format == "PNG" and image.width == 1280
    assert stack.validation_error(msg) is None


@pytest.mark.parametrize("renderer", RENDERERS)
def test_plain_text_is_passed_through(site, fetch, renderer):
    assert fetch(site.url("/notes.txt"), renderer).message["content"] == "plain notes\nsecond line\n"


# --- cookies --------------------------------------------------------------------------------


@pytest.mark.parametrize("renderer", RENDERERS)
def test_a_page_that_needs_a_cookie(site, fetch, cookie_file, renderer):
    refused = fetch(site.url("/members"), renderer)
    assert refused.status == ExitStatus.FAILURE
    assert str(refused.error) == f"{site.url('/members')}: HTTP 403 Forbidden"

    cookies = cookies_module.load_cookies_txt(cookie_file)
    admitted = fetch(site.url("/members"), renderer, cookies=cookies)
    assert admitted.error is None
    assert "The annual meeting is on Thursday" in admitted.message["content"]


def test_cookies_never_carry_over_between_requests_in_a_warm_browser(site, fetch, cookie_file):
    cookies = cookies_module.load_cookies_txt(cookie_file)
    assert fetch(site.url("/members"), cookies=cookies).error is None
    assert fetch(site.url("/members")).status == ExitStatus.FAILURE  # the --cookies context is gone
    assert fetch(site.url("/login")).error is None  # sets the session cookie in the shared context
    assert fetch(site.url("/members")).status == ExitStatus.FAILURE  # ... which was cleared


def test_cookies_txt_parsing():
    parsed = cookies_module.parse_cookies_txt(
        "# Netscape HTTP Cookie File\n"
        "\n"
        ".example.org\tTRUE\t/\tTRUE\t2000000000\ttheme\tdark\n"
        "#HttpOnly_example.org\tFALSE\t/app\tFALSE\t0\tsid\tabc=def\n")
    assert parsed == [
        cookies_module.Cookie("example.org", True, "/", True, 2000000000, "theme", "dark"),
        cookies_module.Cookie("example.org", False, "/app", False, None, "sid", "abc=def", http_only=True),
    ]
    assert parsed[0].for_playwright()["domain"] == ".example.org"
    assert parsed[1].for_playwright() == {"name": "sid", "value": "abc=def", "domain": "example.org",
                                          "path": "/app", "secure": False, "httpOnly": True}
    with pytest.raises(InputError, match="cookies.txt line 2: expected 7 tab-separated fields"):
        cookies_module.parse_cookies_txt("# header\nexample.org TRUE / FALSE 0 a b\n", source="cookies.txt")


# --- redirects, statuses, failures ----------------------------------------------------------------


@pytest.mark.parametrize("renderer", RENDERERS)
def test_a_redirect_chain_is_followed_and_recorded(site, fetch, renderer):
    msg = fetch(site.url("/redirect/3"), renderer).message
    assert msg["meta"]["source"] == site.url("/redirect/3")
    assert msg["meta"]["final_url"] == site.url("/article")
    assert msg["content"].startswith("# Tidal Gardens of the Northern Coast")


@pytest.mark.parametrize("renderer", RENDERERS)
def test_a_redirect_loop_fails(site, fetch, renderer):
    result = fetch(site.url("/loop"), renderer)
    assert result.status == ExitStatus.FAILURE
    assert str(result.error) == f"{site.url('/loop')}: too many redirects"


@pytest.mark.parametrize("renderer", RENDERERS)
@pytest.mark.parametrize("path, status, reason", [
    ("/no/such/page", ExitStatus.FAILURE, "HTTP 404 Not Found"),
    ("/unavailable", ExitStatus.TEMPORARY_FAILURE, "HTTP 503 Service Unavailable"),
])
def test_error_statuses(site, fetch, renderer, path, status, reason):
    result = fetch(site.url(path), renderer)
    assert result.message is None
    assert result.status == status
    assert str(result.error) == f"{site.url(path)}: {reason}"


@pytest.mark.parametrize("renderer", RENDERERS)
def test_a_server_that_never_answers_times_out(site, fetch, renderer):
    result = fetch(site.url("/hang"), renderer, timeout=1)
    assert result.status == ExitStatus.TEMPORARY_FAILURE
    assert str(result.error) == f"{site.url('/hang')}: timed out after 1 s"


@pytest.mark.parametrize("renderer", RENDERERS)
def test_a_refused_connection_is_unavailable(fetch, renderer):
    with socket.socket() as probe:  # a port that was free a moment ago and has no listener
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = fetch(f"http://127.0.0.1:{port}/", renderer)
    assert result.status == ExitStatus.UNAVAILABLE
    assert "refused" in str(result.error).lower()


@pytest.fixture(scope="module")
def tls_site(tmp_path_factory):
    """The same site over HTTPS with a self-signed certificate nobody trusts."""
    if not shutil.which("openssl"):
        pytest.skip("openssl is needed to make a certificate")
    directory = tmp_path_factory.mktemp("tls")
    key, cert = directory / "key.pem", directory / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    server = LocalSite(pdf=b"")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.start()
    yield server
    server.stop()


@pytest.mark.parametrize("renderer", RENDERERS)
def test_an_untrusted_certificate_is_a_tls_error(tls_site, fetch, renderer):
    url = tls_site.url("/article").replace("http://", "https://")
    result = fetch(url, renderer)
    assert result.status == ExitStatus.UNAVAILABLE
    assert f"{url}: TLS error" in str(result.error)


def test_a_url_must_be_http(fetch):
    result = fetch("ftp://127.0.0.1/file")
    assert result.status == ExitStatus.USAGE


# --- PDFs by URL --------------------------------------------------------------------------


@pytest.mark.parametrize("renderer", RENDERERS)
@pytest.mark.parametrize("path", ["/report.pdf", "/download"])
def test_a_url_serving_a_pdf_goes_to_the_pdf_extractor(site, fetch, renderer, path):
    msg = fetch(site.url(path), renderer).message
    assert msg["content"].split() == " ".join(TEXT_LINES).split()
    assert msg["meta"]["source"] == site.url(path)
    assert msg["meta"]["tool"] == "llm-fetch"
    assert msg["meta"]["page_count"] == 1


def test_llm_p_url_uses_fetch_message(site, browser):
    from llmtools.inputs import path_messages

    [msg] = path_messages([site.url("/article")],
                          fetch=lambda url: fetch_message(url, browser=browser, timeout=10))
    assert msg["content"].startswith("# Tidal Gardens")


# --- the browser object the daemon will hold ------------------------------------------------


def test_one_warm_browser_serves_several_threads(site, browser):
    results: dict[str, str] = {}

    def render(path: str) -> None:
        results[path] = browser.render(site.url(path), timeout=10).final_url

    threads = [threading.Thread(target=render, args=(path,)) for path in ("/article", "/notes.txt", "/scripted")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == {path: site.url(path) for path in ("/article", "/notes.txt", "/scripted")}


def test_a_browser_that_died_is_started_again(site):
    with Browser() as own:
        own.start()
        own._call(lambda: own._browser.close())  # as if Chromium crashed
        assert own.render(site.url("/notes.txt"), timeout=10).status == 200


@pytest.mark.parametrize("executable, reason", [
    ("/nonexistent/chromium", "/nonexistent/chromium is not an executable browser"),
    ("/bin/false", "cannot start /bin/false: "),  # starts, then dies at once
])
def test_a_missing_browser_is_reported_once_and_http_takes_over(site, monkeypatch, executable, reason):
    monkeypatch.setenv("LLMTOOLS_BROWSER", executable)
    told: list[tuple[str, str]] = []
    with notices_to(lambda level, message: told.append((level, message))):
        results = list(fetch_each([site.url("/article"), site.url("/notes.txt")], screenshot=True))
    assert {level for level, _ in told} == {"warning"}
    warnings = [message for _, message in told]
    assert [r.error for r in results] == [None, None]
    assert [r.message["meta"]["renderer"] for r in results] == ["http", "http"]
    assert len(warnings) == 1
    assert warnings[0].startswith(f"no browser available ({reason}")
    assert warnings[0].endswith("); fetching with plain HTTP, without --screenshot")
    with Browser() as failing, pytest.raises(BrowserUnavailable, match=reason):
        failing.start()


def test_a_closed_browser_refuses_work():
    closed = Browser()
    closed.close()
    with pytest.raises(BrowserUnavailable):
        closed.render("http://127.0.0.1/")


# --- HTML to Markdown details -------------------------------------------------------------


def test_markdown_conversion_details():
    html = """<html><head><title>T</title><base href="http://127.0.0.1/docs/"></head><body>
      <p hidden>secret hidden text</p><p style="display: none">also hidden</p>
      <p>See <a href="guide.html">the guide</a>, <a href="javascript:void(0)">this</a>
         and <a href="#top">the top</a>. <img src="data:image/png;base64,AAAA" alt="inline">
         <img src="/shot.png" alt="A screenshot"></p>
      <pre><code>keep   this
  indentation</code></pre>
      <table><tr><th>Port</th><th>Use</th></tr><tr><td>22</td><td>ssh</td></tr></table>
      <div class="share-buttons"><a href="/share">Share</a></div>
    </body></html>"""
    document = html_to_markdown(html, "http://127.0.0.1/docs/page.html")
    assert document.title == "T"
    text = document.markdown
    assert text.startswith("# T\n")  # the title stands in for a missing <h1>
    assert "hidden" not in text
    assert "See [the guide](http://127.0.0.1/docs/guide.html), this and the top." in text
    assert "![A screenshot](http://127.0.0.1/shot.png)" in text and "inline" not in text
    assert "keep   this\n  indentation" in text
    assert "| Port | Use |" in text and "| 22 | ssh |" in text
    assert "Share" not in text


def test_a_wrapper_named_like_furniture_keeps_its_content():
    html = ('<body><div class="page-with-sidebar"><h1>Title</h1><p>' + "Real content. " * 20 +
            '</p><div class="sidebar">Side links</div></div></body>')
    text = html_to_markdown(html).markdown
    assert "Real content." in text and "Side links" not in text


# --- the command ----------------------------------------------------------------------------


def test_worst_status_prefers_lasting_failures():
    assert worst_status([0, 0]) == 0
    assert worst_status([75, 1, 69]) == 1
    assert worst_status([75, 69]) == 69
    assert worst_status([0, 75, 65, 2]) == 2


def test_cli_no_browser_writes_a_stack_and_keeps_going_after_a_404(site):
    result = invoke(["--no-browser", site.url("/article"), site.url("/gone"), site.url("/notes.txt")])
    assert result.exit_code == ExitStatus.FAILURE
    messages = stack.parse_stack(result.stdout)
    assert [m["meta"]["source"] for m in messages] == [site.url("/article"), site.url("/notes.txt")]
    assert result.stderr == f"llm-fetch: error: {site.url('/gone')}: HTTP 404 Not Found\n"


def test_cli_reads_urls_from_stdin_and_writes_text_with_o_text(site):
    result = invoke(["--no-browser", "-o", "text"], input=f"{site.url('/notes.txt')}\n\n# a comment\n"
                                                         f"{site.url('/notes.txt')}\n")
    assert result.exit_code == 0
    assert result.stdout == "plain notes\nsecond line\n\nplain notes\nsecond line\n"


@pytest.mark.parametrize("args, complaint", [
    (["--no-browser", "--screenshot", "http://127.0.0.1/"], "--screenshot needs the browser"),
    (["--no-browser", "--wait-for", "p", "http://127.0.0.1/"], "--wait-for needs the browser"),
    ([], "no URL given"),
    (["--cookies", "/nonexistent/cookies.txt", "http://127.0.0.1/"], "No such file"),
    (["--timeout", "0", "http://127.0.0.1/"], "--timeout"),
])
def test_cli_usage_errors(args, complaint):
    result = invoke(args, input="")
    assert result.exit_code == ExitStatus.USAGE
    assert complaint in result.stderr
    assert result.stdout == ""


def test_cli_cookie_file_with_a_bad_line_is_bad_input(tmp_path):
    bad = tmp_path / "cookies.txt"
    bad.write_text("127.0.0.1\tFALSE\t/\n")
    result = invoke(["--cookies", str(bad), "http://127.0.0.1/"])
    assert result.exit_code == ExitStatus.DATA_ERROR
    assert result.stderr == (f"llm-fetch: error: {bad} line 1: expected 7 tab-separated fields "
                             "(domain, subdomains, path, secure, expires, name, value), got 3\n")


# --- end to end, as real processes -------------------------------------------------------------


def test_process_with_browser_one_good_url_and_one_404(site, cookie_file):
    completed = subprocess.run(
        [command_path("llm-fetch"), "--cookies", cookie_file, site.url("/members"), site.url("/missing"),
         site.url("/scripted")],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert completed.returncode == ExitStatus.FAILURE, completed.stderr
    messages = stack.parse_stack(completed.stdout)
    assert [m["meta"]["source"] for m in messages] == [site.url("/members"), site.url("/scripted")]
    assert "The annual meeting is on Thursday" in messages[0]["content"]
    assert FORECAST["summary"] in messages[1]["content"]
    # A cold browser makes the run slow enough for progress lines; the error is the only other line.
    said = [line for line in completed.stderr.splitlines() if not line.startswith("llm-fetch: fetching ")]
    assert said == [f"llm-fetch: error: {site.url('/missing')}: HTTP 404 Not Found"]


def test_process_exit_status_is_the_worst_failure(site):
    completed = subprocess.run(
        [command_path("llm-fetch"), "--no-browser", "--timeout", "1", site.url("/hang"),
         site.url("/unavailable"), site.url("/missing")],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert completed.returncode == ExitStatus.FAILURE  # the 404 outlasts the timeout and the 503
    assert completed.stdout == ""
    lines = completed.stderr.splitlines()
    assert [line for line in lines if " error: " in line] == [
        f"llm-fetch: error: {site.url('/hang')}: timed out after 1 s",
        f"llm-fetch: error: {site.url('/unavailable')}: HTTP 503 Service Unavailable",
        f"llm-fetch: error: {site.url('/missing')}: HTTP 404 Not Found",
    ]
    # Past the first second, each URL says when it starts (the first one may, at 1 s).
    assert f"llm-fetch: fetching {site.url('/unavailable')} (2/3)" in lines
    assert f"llm-fetch: fetching {site.url('/missing')} (3/3)" in lines


def test_process_help_imports_no_heavy_module():
    probe = ("import sys, llmtools.cli.fetch, llmtools.cli.pdf\n"
             "heavy = {'playwright', 'pytesseract', 'pdftotext', 'lxml', 'markdownify', 'httpx', 'PIL'}\n"
             "print(sorted(heavy & {name.split('.')[0] for name in sys.modules}))")
    completed = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                               cwd=REPO, check=True)
    assert json.loads(completed.stdout.replace("'", '"')) == []
    help_run = subprocess.run([command_path("llm-fetch"), "--help"], capture_output=True, text=True)
    assert help_run.returncode == 0 and "--wait-for SELECTOR" in help_run.stdout


def test_errors_are_llmtools_errors_with_the_url_first(site, fetch):
    result = fetch(site.url("/missing"), "http")
    assert isinstance(result.error, LlmtoolsError)
    assert str(result.error).startswith(site.url("/missing") + ": ")
