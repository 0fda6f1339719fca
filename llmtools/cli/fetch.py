"""llm-fetch: URLs to Markdown messages (see llm-fetch(1))."""

from __future__ import annotations

import sys

import click

from llmtools.cli.main import debug_option, error_line, run
from llmtools.cli.output import echo, output_option, stdin_is_piped, stdout_is_terminal, write_messages
from llmtools.errors import UsageError


def _urls_from_stdin() -> list[str]:
    """One URL per line (blank lines and # comments skipped), as `xargs` would pass them."""
    text = sys.stdin.read()
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


@click.command(name="llm-fetch", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("urls", nargs=-1, metavar="URL...")
@click.option("--no-browser", is_flag=True,
              help="Fetch over plain HTTP instead of rendering in headless Chromium.")
@click.option("--screenshot", is_flag=True, help="Add the rendered page as a PNG image part.")
@click.option("--cookies", "cookies_file", metavar="FILE",
              help="Send the cookies in FILE (Netscape cookies.txt format), e.g. for logged-in pages.")
@click.option("--wait-for", metavar="SELECTOR",
              help="Wait until an element matching this CSS selector exists before reading the page.")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=30.0, show_default=True,
              metavar="SECONDS", help="Give up on a URL after this long.")
@output_option("Default: a stack (JSON Lines) unless stdout is a terminal, which gets Markdown.")
@debug_option
def command(urls: tuple[str, ...], no_browser: bool, screenshot: bool, cookies_file: str | None,
            wait_for: str | None, timeout: float, output_format: str | None) -> int:
    """Fetch web pages (or PDFs) as Markdown user messages, one per URL.

    URLs come from the arguments, else one per line from stdin. Pages are rendered in
    headless Chromium so script-written content is there; a URL that fails is reported
    on stderr and the others still come out.
    """
    from llmtools.content.fetch import worst_status

    if no_browser and (screenshot or wait_for):
        raise UsageError(f"{'--screenshot' if screenshot else '--wait-for'} needs the browser; "
                         "drop --no-browser")
    url_list = list(urls)
    if not url_list and stdin_is_piped():
        url_list = _urls_from_stdin()
    if not url_list:
        raise UsageError("no URL given (pass URLs as arguments or one per line on stdin)")
    cookies = None
    if cookies_file:
        from llmtools.content.cookies import load_cookies_txt

        cookies = load_cookies_txt(cookies_file)  # read here too: a bad file fails before any fetch
    from llmtools import services

    results = services.fetch(url_list, use_browser=not no_browser, timeout=timeout, wait_for=wait_for,
                             cookies_file=cookies_file, cookies=cookies, screenshot=screenshot)

    prog = click.get_current_context().find_root().info_name or "llm-fetch"
    resolved_format = output_format or ("text" if stdout_is_terminal() else "jsonl")
    statuses = []
    wrote = False
    for result in results:
        statuses.append(result.status)
        if result.error is not None:
            click.echo(error_line(prog, str(result.error)), err=True)
            continue
        if wrote and resolved_format == "text":
            echo()  # a blank line between pages, as write_messages does
        # Each page goes out as soon as it is ready, so a pipeline can start on it.
        write_messages([result.message], resolved_format, content_default=True)
        wrote = True
    return worst_status(statuses)


def main() -> None:
    run(command)
