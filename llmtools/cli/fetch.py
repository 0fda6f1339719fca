"""llm-fetch: URLs to Markdown messages (see llm-fetch(1))."""

from __future__ import annotations

import click

from llmtools.cli.main import run
from llmtools.cli.options import command as llmtools_command
from llmtools.cli.options import complete_paths, content_output_options, url_timeout_option
from llmtools.cli.output import read_stdin_lines, write_content
from llmtools.errors import UsageError


def _urls_from_lines(lines: list[str]) -> list[str]:
    """One URL per line (blank lines and # comments skipped), as `xargs` would pass them."""
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


@llmtools_command("llm-fetch")
@click.argument("urls", nargs=-1, metavar="URL...")
@click.option("--no-browser", is_flag=True,
              help="Fetch over plain HTTP instead of rendering in headless Chromium.")
@click.option("--screenshot", is_flag=True, help="Add the rendered page as a PNG image part.")
@click.option("--cookies", "cookies_file", metavar="FILE", shell_complete=complete_paths,
              help="Send the cookies in FILE (Netscape cookies.txt format), e.g. for logged-in pages.")
@click.option("--wait-for", metavar="SELECTOR",
              help="Wait until an element matching this CSS selector exists before reading the page.")
@url_timeout_option()
@content_output_options(text_help="Markdown")
def command(urls: tuple[str, ...], no_browser: bool, screenshot: bool, cookies_file: str | None,
            wait_for: str | None, url_timeout: float, output_format: str | None, raw: bool) -> int:
    """Fetch web pages (or PDFs) as Markdown user messages, one per URL.

    URLs come from the arguments, else one per line from stdin. Pages are rendered in
    headless Chromium so script-written content is there; a URL that fails is reported
    on stderr and the others still come out.
    """
    if no_browser and (screenshot or wait_for):
        raise UsageError(f"{'--screenshot' if screenshot else '--wait-for'} needs the browser; "
                         "drop --no-browser")
    url_list = list(urls) or _urls_from_lines(read_stdin_lines())
    if not url_list:
        raise UsageError("no URL given (pass URLs as arguments or one per line on stdin)")
    results = _fetch(url_list, use_browser=not no_browser, timeout=url_timeout, wait_for=wait_for,
                     cookies_file=cookies_file, screenshot=screenshot)
    return write_content((result.message if result.error is None else result.error for result in results),
                         output_format, raw=raw)


def _fetch(url_list: list[str], *, use_browser: bool, timeout: float, wait_for: str | None,
           cookies_file: str | None, screenshot: bool):
    """FetchResults as each completes (`llmtools.services` decides where the browser runs)."""
    from llmtools import services

    cookies = None
    if cookies_file:
        from llmtools.content.cookies import load_cookies_txt

        cookies = load_cookies_txt(cookies_file)  # read here too: a bad file fails before any fetch
    from llmtools.content.progress_lines import announce_slow

    return announce_slow(url_list, services.fetch(
        url_list, use_browser=use_browser, timeout=timeout, wait_for=wait_for,
        cookies_file=cookies_file, cookies=cookies, screenshot=screenshot))


def main() -> None:
    run(command)
