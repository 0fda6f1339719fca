"""URLs to messages: web pages as Markdown, PDFs as text, images as image parts.

Pages load in headless Chromium (`llmtools.content.browser.Browser`) so that
script-rendered content is there; `use_browser=False` uses plain HTTP (httpx). When no
browser can start, the fetch says so once and carries on over plain HTTP.

Pass a warm `Browser` (the daemon holds one) to skip the 1-2 s launch; without one,
a browser is launched for the call and closed at its end.

Failures raise (or, from `fetch_each`, report) errors from `llmtools.errors` whose
message starts with the URL:

    HTTP 4xx, redirect loops                    LlmtoolsError      1
    a URL that is not http(s)                   UsageError         2
    content that cannot be read (bad PDF, ...)  InputError         65
    host unreachable, TLS errors, no browser    ServiceUnavailable 69
    timeouts, HTTP 429 and 5xx, cut connections TemporaryFailure   75

Redirects are followed (as a browser does) and recorded in `meta.final_url`.
"""

from __future__ import annotations

import base64
import dataclasses
import http
import re
import time
from collections.abc import Generator, Iterable
from urllib.parse import urlsplit

from llmtools import detect, notices, stack

# Imported by cli/fetch.py and cli/pdf.py from here, where it used to live.
from llmtools.errors import (
    ExitStatus,
    InputError,
    LlmtoolsError,
    ServiceUnavailable,
    TemporaryFailure,
    UsageError,
    worst_status,  # noqa: F401
)

DEFAULT_TIMEOUT_S = 30.0
MAX_BODY_BYTES = 200 * 1024 * 1024
MAX_REDIRECTS = 20  # Chromium's own limit, so both paths agree
USER_AGENT = "Mozilla/5.0 (compatible; llmtools llm-fetch)"
HTML_TYPES = ("text/html", "application/xhtml+xml")
TEXT_TYPES = ("application/json", "application/xml", "application/javascript", "application/x-yaml",
              "application/yaml", "application/toml")

@dataclasses.dataclass
class FetchResult:
    url: str
    message: dict | None = None
    error: LlmtoolsError | None = None

    @property
    def status(self) -> ExitStatus:
        return ExitStatus.OK if self.error is None else self.error.status


@dataclasses.dataclass
class Fetched:
    """What came back for a URL, from either path, before it becomes a message."""

    url: str
    final_url: str
    content_type: str
    html: str | None
    body: bytes | None
    screenshot_png: bytes | None
    renderer: str  # "chromium" or "http"
    still_changing_s: float | None = None  # the DOM never went quiet: how long it was watched


def check_url(url: str) -> str:
    """`url` if it is a well-formed http(s) URL with a host and a valid port, else exit 2."""
    try:
        parts = urlsplit(url)
        port = parts.port  # parsed lazily: this is where 99999 or "x" is refused
    except ValueError as error:  # "Invalid IPv6 URL", "Port out of range 0-65535", ...
        raise UsageError(f"{url}: not a valid URL ({error})") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise UsageError(f"{url}: not an http:// or https:// URL")
    if not parts.hostname or port == 0:
        raise UsageError(f"{url}: not a valid URL (no host or port 0)")
    return url


def _with_url(url: str, error: LlmtoolsError) -> LlmtoolsError:
    """The same error, its message prefixed with the URL (once)."""
    text = str(error)
    if text.startswith(url + ":"):
        return error
    return type(error)(f"{url}: {text}", status=error.status)


def status_error(status: int, reason: str = "") -> LlmtoolsError | None:
    """None for a 2xx status, else the error it means."""
    if 200 <= status < 300:
        return None
    if not reason:
        try:
            reason = http.HTTPStatus(status).phrase
        except ValueError:
            reason = ""
    text = f"HTTP {status} {reason}".strip()
    if status == 429 or status >= 500:
        return TemporaryFailure(text)
    return LlmtoolsError(text)


# --- plain HTTP -------------------------------------------------------------------


@dataclasses.dataclass
class HttpResponse:
    url: str
    final_url: str
    status: int
    reason: str
    content_type: str
    body: bytes
    redirects: list[str]


def _connect_error(error: Exception) -> LlmtoolsError:
    import ssl

    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return ServiceUnavailable(f"TLS error: {cause.verify_message or cause.reason}")
        if isinstance(cause, ssl.SSLError):
            return ServiceUnavailable(f"TLS error: {cause.reason or cause}")
        if isinstance(cause, ConnectionRefusedError):
            return ServiceUnavailable("cannot connect (connection refused)")
        cause = cause.__cause__ or cause.__context__
    text = str(error)
    if "CERTIFICATE_VERIFY_FAILED" in text or "SSL" in text:
        return ServiceUnavailable(f"TLS error: {text}")
    if "Name or service not known" in text or "getaddrinfo" in text or "nodename" in text:
        return ServiceUnavailable("cannot resolve the host name")
    return ServiceUnavailable(f"cannot connect ({text or type(error).__name__})")


def http_get(url: str, *, timeout: float = DEFAULT_TIMEOUT_S, cookies: list | None = None) -> HttpResponse:
    """GET with redirects followed; transport failures raised as our errors.

    HTTP error statuses are returned, not raised. `timeout` applies to connecting and
    to each wait for data, as with curl's --connect-timeout plus a read timeout.
    """
    import httpx

    from llmtools.content.cookies import cookie_jar

    jar = cookie_jar(cookies) if cookies else None
    try:
        with httpx.Client(follow_redirects=True, max_redirects=MAX_REDIRECTS, timeout=timeout,
                          headers={"User-Agent": USER_AGENT}, cookies=jar) as client:
            with client.stream("GET", url) as response:
                chunks = []
                size = 0
                # `timeout` bounds each wait, and the whole body too: a server trickling a
                # byte a second would otherwise never time out.
                deadline = time.monotonic() + timeout
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > MAX_BODY_BYTES:  # counted decoded: a gzip bomb stops here
                        raise InputError(f"larger than {MAX_BODY_BYTES // (1024 * 1024)} MB")
                    if time.monotonic() > deadline:
                        raise TemporaryFailure(f"timed out after {timeout:g} s (the page never finished)")
                    chunks.append(chunk)
                return HttpResponse(
                    url=url, final_url=str(response.url), status=response.status_code,
                    reason=response.reason_phrase,
                    content_type=response.headers.get("content-type", "").split(";")[0].strip().lower(),
                    body=b"".join(chunks), redirects=[str(r.url) for r in response.history])
    except httpx.TimeoutException:
        raise TemporaryFailure(f"timed out after {timeout:g} s") from None
    except httpx.TooManyRedirects:
        raise LlmtoolsError("too many redirects") from None
    except (httpx.UnsupportedProtocol, httpx.InvalidURL) as error:
        raise UsageError(f"not a URL that can be fetched ({error})") from None
    except httpx.ConnectError as error:
        raise _connect_error(error) from None
    except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as error:
        raise TemporaryFailure(f"connection failed ({error or type(error).__name__})") from None
    except httpx.HTTPError as error:
        raise ServiceUnavailable(f"request failed ({error or type(error).__name__})") from None


def _decode(body: bytes, charset_hint: str | None = None) -> str:
    """Text of a body: declared charset, else <meta charset>, else UTF-8, else cp1252."""
    candidates = [charset_hint] if charset_hint else []
    meta = re.search(rb"""<meta[^>]+charset=["']?([\w-]+)""", body[:4096], re.I)
    if meta:
        candidates.append(meta.group(1).decode("ascii", "replace"))
    candidates.append("utf-8")
    for charset in candidates:
        try:
            return body.decode(charset)
        except (LookupError, UnicodeDecodeError):
            continue
    return body.decode("cp1252", errors="replace")


def _fetch_over_http(url: str, timeout: float, cookies: list | None) -> Fetched:
    response = http_get(url, timeout=timeout, cookies=cookies)
    error = status_error(response.status, response.reason)
    if error:
        raise error
    html = None
    if response.content_type in HTML_TYPES or (not response.content_type and b"<html" in response.body[:2048].lower()):
        html = _decode(response.body)
    return Fetched(url=url, final_url=response.final_url, content_type=response.content_type,
                   html=html, body=None if html is not None else response.body,
                   screenshot_png=None, renderer="http")


def _fetch_in_browser(url: str, browser, timeout: float, wait_for: str | None,
                      cookies: list | None, screenshot: bool) -> Fetched:
    page = browser.render(url, timeout=timeout, wait_for=wait_for,
                          cookies=[cookie.for_playwright() for cookie in cookies] if cookies else None,
                          screenshot=screenshot)
    if page.status is not None:
        error = status_error(page.status, page.status_text)
        if error:
            raise error
    return Fetched(url=url, final_url=page.final_url, content_type=page.content_type,
                   html=page.html, body=page.body, screenshot_png=page.screenshot_png,
                   renderer="chromium", still_changing_s=page.still_changing_s)


def looks_like_placeholder(text: str) -> bool:
    """Short text that says it is still loading ("Loading...", "Please enable JavaScript")."""
    from llmtools.content.rendering import PLACEHOLDER_MAX_CHARS, PLACEHOLDER_PATTERN

    text = text.strip()
    return len(text) <= PLACEHOLDER_MAX_CHARS and re.search(PLACEHOLDER_PATTERN, text, re.I) is not None


def unfinished_page_warnings(fetched: Fetched, message: dict) -> list[str]:
    """What to tell the user when the page may not be what a reader would see."""
    warnings = []
    if fetched.still_changing_s is not None:
        warnings.append(f"the page was still changing after {fetched.still_changing_s:.1f} s; "
                        "this is what it showed then")
    if fetched.html is not None and looks_like_placeholder(stack.text_of(message)):
        snippet = " ".join(stack.text_of(message).split())[:60]
        remedy = ("its script may need the browser (drop --no-browser)" if fetched.renderer == "http"
                  else "give it longer (--url-timeout) or wait for its content (--wait-for SELECTOR)")
        warnings.append(f"the text still looks like a placeholder ({snippet!r}); {remedy}")
    return warnings


# --- content to message -------------------------------------------------------------


def message_from(fetched: Fetched, *, tool: str = "llm-fetch") -> dict:
    """One user message for what a URL served, by its content type and its bytes."""
    from llmtools.content import pdf

    url = fetched.url
    final_url = fetched.final_url if fetched.final_url != url else None
    mime = fetched.content_type
    body = fetched.body or b""
    sniffed = detect.sniff(body)
    meta = {"source": url, "tool": tool, "final_url": final_url}
    if fetched.html is None and (mime == detect.PDF or sniffed == detect.PDF):
        msg = pdf.pdf_message(body, source=url, tool=tool)
        if final_url:
            msg["meta"]["final_url"] = final_url
        return msg
    if fetched.html is not None:
        from llmtools.content.html import html_to_markdown

        document = html_to_markdown(fetched.html, base_url=fetched.final_url)
        meta["title"] = document.title
        text = document.markdown
    else:
        if detect.is_image(sniffed):
            msg = stack.image_message(body, sniffed, source=url)
            msg["meta"].update({k: v for k, v in meta.items() if v is not None})
            return msg
        if not (mime.startswith("text/") or mime in TEXT_TYPES or mime.endswith(("+json", "+xml"))
                or (not mime and sniffed != detect.BINARY)):
            raise InputError(f"cannot read content of type {mime or 'unknown'}")
        text = _decode(body)
    meta["renderer"] = fetched.renderer
    if fetched.screenshot_png:
        content: str | list = [
            {"type": "text", "text": text},
            {"type": "image", "media_type": "image/png",
             "data": base64.b64encode(fetched.screenshot_png).decode("ascii")},
        ]
    else:
        content = text
    return stack.message("user", content, **meta)


# --- the public entry points ---------------------------------------------------------


def fetch_each(
    urls: Iterable[str],
    *,
    browser=None,
    use_browser: bool = True,
    timeout: float = DEFAULT_TIMEOUT_S,
    wait_for: str | None = None,
    cookies: list | None = None,
    screenshot: bool = False,
    tool: str = "llm-fetch",
) -> Generator[FetchResult, None, None]:
    """Fetch URLs one after another, yielding a FetchResult for each as it completes.

    A failing URL yields its error and the rest go on. `browser` is a warm
    `llmtools.content.browser.Browser` to use (and leave open); without one and with
    `use_browser`, one is launched on the first URL and closed at the end. `cookies`
    are `llmtools.content.cookies.Cookie`s; `screenshot` adds the rendered page as a
    PNG image part (browser only).

    Warnings go to the notice channel (`llmtools.notices`).
    """
    warn = notices.warn
    own_browser = None
    over_http = not use_browser  # also once the browser turns out to be unavailable
    try:
        for url in urls:
            try:
                check_url(url)
                if not over_http and browser is None:
                    from llmtools.content.browser import Browser

                    own_browser = browser = Browser()
                fetched = None
                if not over_http:
                    try:
                        fetched = _fetch_in_browser(url, browser, timeout, wait_for, cookies, screenshot)
                    except _browser_unavailable() as error:
                        over_http = True
                        dropped = [flag for flag, on in (("--screenshot", screenshot), ("--wait-for", wait_for)) if on]
                        warn(f"no browser available ({error}); fetching with plain HTTP"
                             + (f", without {' and '.join(dropped)}" if dropped else ""))
                if fetched is None:
                    fetched = _fetch_over_http(url, timeout, cookies)
                yield FetchResult(url, message=_checked_message(fetched, tool))
            except LlmtoolsError as error:
                yield FetchResult(url, error=_with_url(url, error))
    except GeneratorExit:  # the caller stopped early, between pages: close as usual
        raise
    except BaseException:
        # Ctrl-C or SIGTERM, perhaps mid-render: do not wait for the page load to end.
        # The browser's thread is a daemon thread and Chromium exits with our process.
        if own_browser is not None:
            own_browser.close(timeout=0.5)
            own_browser = None
        raise
    finally:
        if own_browser is not None:
            own_browser.close()


def _checked_message(fetched: Fetched, tool: str) -> dict:
    """The message, with a warning for each sign the page was not finished."""
    message = message_from(fetched, tool=tool)
    for warning in unfinished_page_warnings(fetched, message):
        notices.warn(f"{fetched.url}: {warning}")
    return message


def _browser_unavailable() -> type[LlmtoolsError]:
    from llmtools.content.browser import BrowserUnavailable

    return BrowserUnavailable


def fetch_message(
    url: str,
    *,
    browser=None,
    use_browser: bool = True,
    timeout: float = DEFAULT_TIMEOUT_S,
    wait_for: str | None = None,
    cookies: list | None = None,
    screenshot: bool = False,
    tool: str = "llm-fetch",
) -> dict:
    """One URL as one user message (what `llm -p URL` uses); raises on failure."""
    for result in fetch_each([url], browser=browser, use_browser=use_browser, timeout=timeout,
                             wait_for=wait_for, cookies=cookies, screenshot=screenshot, tool=tool):
        if result.error is not None:
            raise result.error
        assert result.message is not None
        return result.message
    raise AssertionError("fetch_each yields one result per URL")


def fetch_pdf_bytes(url: str, *, timeout: float = DEFAULT_TIMEOUT_S, cookies: list | None = None) -> bytes:
    """The bytes of a PDF served at `url` (plain HTTP: a PDF needs no script to run)."""
    check_url(url)
    try:
        response = http_get(url, timeout=timeout, cookies=cookies)
        error = status_error(response.status, response.reason)
        if error:
            raise error
        if not detect.is_pdf(response.body, strict=False):
            raise InputError(f"not a PDF (served as {response.content_type or 'unknown type'})")
    except LlmtoolsError as error:
        raise _with_url(url, error) from None
    return response.body
