"""One page in the browser: loading it, letting it settle, what came back, a screenshot,
a download; and Chromium's navigation errors as ours. Called by `Browser` on its own
thread, with a Playwright page it owns."""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Callable
from typing import Any

from llmtools.errors import LlmtoolsError, ServiceUnavailable, TemporaryFailure, UsageError

VIEWPORT = {"width": 1280, "height": 800}
# Pages that fetch data after "load" get this long at most to go quiet.
SETTLE_CAP_S = 3.0
# Then the DOM must stop changing: no mutation for SETTLE_QUIET_S, and no text that still
# looks like a placeholder, within SETTLE_MAX_S (and the request's own timeout).
SETTLE_QUIET_S = 0.3
SETTLE_MAX_S = 10.0
SETTLE_MARGIN_S = 0.5  # left of the timeout for reading the page after settling
# What a page says while its script is still filling it in (matched in short texts only).
PLACEHOLDER_PATTERN = (r"\b(loading|please wait|just a moment|one moment|fetching data|initiali[sz]ing|"
                       r"enable javascript|javascript is (required|disabled)|requires javascript)\b")
PLACEHOLDER_MAX_CHARS = 200
EMPTY_WAIT_S = 3.0  # a page with no text at all may be one (images only): wait less for it
# Resolves when the DOM has been quiet long enough and does not look unfinished, or at the
# limit: {"settled": bool, "changing": bool (mutations right up to the limit), "waited_ms": number}.
SETTLE_SCRIPT = """([quietMs, limitMs, pattern, shortText, emptyMs, sinceLoad]) => new Promise((resolve) => {
  const started = performance.now();
  // Right after "load" nothing ran unobserved: the quiet time counts from the load's end.
  const navigation = performance.getEntriesByType("navigation")[0];
  const loaded = navigation && navigation.loadEventEnd > 0 ? navigation.loadEventEnd : started;
  let lastChange = sinceLoad ? Math.min(started, loaded) : started;
  const placeholder = new RegExp(pattern, "i");
  const unfinished = () => {
    const text = (document.body ? document.body.innerText : "").trim();
    if (text.length === 0) return performance.now() - started < emptyMs;
    return text.length <= shortText && placeholder.test(text);
  };
  const observer = new MutationObserver(() => { lastChange = performance.now(); });
  observer.observe(document, {subtree: true, childList: true, characterData: true, attributes: true});
  const check = () => {
    const now = performance.now();
    const still = now - lastChange < quietMs;
    const quiet = !still && !unfinished();
    if (quiet || now - started >= limitMs) {
      observer.disconnect();
      resolve({settled: quiet, changing: still, waited_ms: now - started});
    } else {
      setTimeout(check, 50);
    }
  };
  setTimeout(check, 50);
})"""
MAX_SCREENSHOT_HEIGHT = 8000  # pixels; what model providers accept on an image's long side
HTML_TYPES = ("text/html", "application/xhtml+xml")


@dataclasses.dataclass
class RenderedPage:
    url: str  # as asked for
    final_url: str  # after redirects
    status: int | None  # HTTP status of the final response (None if there was none)
    status_text: str
    content_type: str  # media type without parameters, lower case ("" if unknown)
    headers: dict[str, str]
    html: str | None  # the rendered DOM, for HTML pages
    body: bytes | None  # the raw bytes, for everything else (PDFs, text, images)
    redirects: list[str]  # the URLs that redirected, in order
    screenshot_png: bytes | None = None
    still_changing_s: float | None = None  # set when the DOM never went quiet: how long we waited


class Deadline:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    def left_s(self) -> float:
        return max(0.0, self.end - time.monotonic())

    def ms(self, cap_s: float | None = None) -> float:
        """Milliseconds left (at least 1: Playwright reads 0 as "no timeout")."""
        left = self.end - time.monotonic()
        if cap_s is not None:
            left = min(left, cap_s)
        return max(1.0, left * 1000)


# Chromium's net::ERR_* codes by what the user can do about them.
_UNREACHABLE = re.compile(r"ERR_(NAME_NOT_RESOLVED|NAME_RESOLUTION_FAILED|CONNECTION_REFUSED|"
                          r"ADDRESS_UNREACHABLE|ADDRESS_INVALID|INTERNET_DISCONNECTED|CERT_\w+|SSL_\w+|"
                          r"BAD_SSL_CLIENT_AUTH_CERT|PROXY_\w+|TUNNEL_CONNECTION_FAILED|BLOCKED_\w+|"
                          r"UNSAFE_PORT)")
_TEMPORARY = re.compile(r"ERR_(TIMED_OUT|CONNECTION_TIMED_OUT|CONNECTION_RESET|CONNECTION_CLOSED|"
                        r"CONNECTION_ABORTED|CONNECTION_FAILED|EMPTY_RESPONSE|NETWORK_CHANGED|"
                        r"HTTP2_\w+|QUIC_\w+|INCOMPLETE_CHUNKED_ENCODING|CONTENT_LENGTH_MISMATCH)")


def navigation_error(message: str) -> LlmtoolsError:
    """A Playwright navigation error as one of ours, with a short reason."""
    code_match = re.search(r"net::(ERR_[A-Z0-9_]+)", message)
    code = code_match.group(1) if code_match else None
    if code is None:
        return LlmtoolsError(first_line(message) if message.strip() else "navigation failed")
    if code.startswith(("ERR_CERT_", "ERR_SSL_", "ERR_BAD_SSL")):
        return ServiceUnavailable(f"TLS error ({code})")
    if code == "ERR_TOO_MANY_REDIRECTS":
        return LlmtoolsError("too many redirects")
    if _UNREACHABLE.search(code):
        return ServiceUnavailable(f"cannot connect ({code})")
    if _TEMPORARY.search(code):
        return TemporaryFailure(f"connection failed ({code})")
    if code in ("ERR_INVALID_URL", "ERR_DISALLOWED_URL_SCHEME"):
        return UsageError(f"not a URL the browser can load ({code})")
    return LlmtoolsError(f"navigation failed ({code})")


def first_line(text: str) -> str:
    """The gist of a Playwright message: its first line, without the "Page.goto: " prefix."""
    lines = text.strip().splitlines()
    return re.sub(r"^\w+\.\w+: ", "", lines[0]) if lines else "no details"


def load(page: Any, url: str, deadline: Deadline, *, wait_for: str | None, screenshot: bool,
         pending_requests: Callable[[], int], downloads: list) -> RenderedPage:
    """Navigate `page` to `url` and return what the browser has once the page is ready.

    `pending_requests` counts the page's fetch/XHR requests still open; `downloads`
    collects what the page started downloading (both kept by the caller's listeners).
    """
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        response = page.goto(url, wait_until="load", timeout=deadline.ms())
    except PlaywrightTimeout:
        raise TemporaryFailure(f"timed out after {deadline.seconds:g} s") from None
    except PlaywrightError as error:
        if "Download is starting" in error.message:
            return downloaded(page, url, deadline, downloads)
        raise
    result = _response_facts(page, url, response)
    is_html = result.content_type in HTML_TYPES or not result.content_type
    if result.status is not None and result.status >= 400:
        # An error page: no point waiting for selectors that will never come.
        result.html = page.content() if is_html else None
        return result
    if not is_html:
        result.body = _body(page, response, result, deadline)
        return result
    quiet_since_load = pending_requests() == 0 and not wait_for
    if pending_requests() > 0:
        # Data still loading after "load" (a script fetching JSON to render): give the
        # page a bounded while to go quiet, then take what is there.
        try:
            page.wait_for_load_state("networkidle", timeout=deadline.ms(SETTLE_CAP_S))
        except PlaywrightTimeout:
            pass
    if wait_for:
        _wait_for_selector(page, wait_for, deadline)
    result.still_changing_s = settle(page, deadline, since_load=quiet_since_load)
    result.html = page.content()
    if screenshot:
        result.screenshot_png = take_screenshot(page, deadline)
    return result


def settle(page: Any, deadline: Deadline, *, since_load: bool = False) -> float | None:
    """Wait until the DOM stops changing (a timer, hydration, an animation filling the page
    in after "load"); None when it did (or when it only still looks unfinished, which the
    caller judges from the text), else the seconds waited before giving up. `since_load`:
    nothing happened between "load" and now that the observer missed, so the quiet time
    may count from the load's end."""
    from playwright.sync_api import Error as PlaywrightError

    limit_s = min(SETTLE_MAX_S, deadline.left_s() - SETTLE_MARGIN_S)
    if limit_s <= 0:
        return None
    try:
        outcome = page.evaluate(SETTLE_SCRIPT, [SETTLE_QUIET_S * 1000, limit_s * 1000,
                                                PLACEHOLDER_PATTERN, PLACEHOLDER_MAX_CHARS, EMPTY_WAIT_S * 1000,
                                                since_load])
    except PlaywrightError:
        return None  # the page navigated away (a script redirect): read what is there now
    return outcome.get("waited_ms", 0) / 1000 if outcome.get("changing") else None


def _response_facts(page: Any, url: str, response: Any) -> RenderedPage:
    """Status, headers and redirects of the navigation, before any content is read."""
    # .headers needs no round trip to the browser, unlike .all_headers(), and has Content-Type.
    headers = dict(response.headers) if response is not None else {}
    redirects: list[str] = []
    if response is not None:
        request = response.request.redirected_from
        while request is not None:
            redirects.insert(0, request.url)
            request = request.redirected_from
    return RenderedPage(
        url=url, final_url=page.url, status=response.status if response is not None else None,
        status_text=response.status_text if response is not None else "",
        content_type=headers.get("content-type", "").split(";")[0].strip().lower(),
        headers=headers, html=None, body=None, redirects=redirects)


def _body(page: Any, response: Any, result: RenderedPage, deadline: Deadline) -> bytes:
    """The raw bytes of a response that is not HTML."""
    if result.content_type == "application/pdf":
        # Chromium shows PDFs in its viewer, and the navigation's body is then the
        # viewer's page: ask again through the context (same cookies) for the bytes.
        fetched = page.context.request.get(result.final_url, timeout=deadline.ms())
        try:
            return fetched.body()
        finally:
            fetched.dispose()
    return response.body() if response is not None else b""


def _wait_for_selector(page: Any, selector: str, deadline: Deadline) -> None:
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_selector(selector, state="attached", timeout=deadline.ms())
    except PlaywrightTimeout:
        raise TemporaryFailure(f"timed out after {deadline.seconds:g} s waiting for {selector!r}") from None
    except PlaywrightError as error:
        if re.search(r"(pars\w+|not a valid|unknown engine).*selector|selector.*(pars|not valid)",
                     error.message, re.I):
            raise UsageError(f"--wait-for {selector!r} is not a valid selector") from None
        raise


def take_screenshot(page: Any, deadline: Deadline) -> bytes:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    height = page.evaluate("() => document.documentElement.scrollHeight") or VIEWPORT["height"]
    clip = None
    if height > MAX_SCREENSHOT_HEIGHT:
        clip = {"x": 0, "y": 0, "width": VIEWPORT["width"], "height": MAX_SCREENSHOT_HEIGHT}
    try:
        return page.screenshot(full_page=True, clip=clip, type="png", timeout=deadline.ms())
    except PlaywrightTimeout:
        raise TemporaryFailure(f"timed out after {deadline.seconds:g} s taking the screenshot") from None


def downloaded(page: Any, url: str, deadline: Deadline, downloads: list) -> RenderedPage:
    """A URL the browser saves rather than shows (Content-Disposition: attachment)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    if not downloads:
        try:
            downloads.append(page.wait_for_event("download", timeout=deadline.ms()))
        except PlaywrightTimeout:
            raise TemporaryFailure(f"timed out after {deadline.seconds:g} s") from None
    download = downloads[0]
    path = download.path()  # waits for the download to finish
    failure = download.failure()
    if failure or path is None:
        raise TemporaryFailure(f"download failed: {failure or 'no file'}")
    with open(path, "rb") as handle:
        body = handle.read()
    download.delete()
    return RenderedPage(url=url, final_url=download.url, status=200, status_text="OK",
                        content_type="", headers={}, html=None, body=body, redirects=[])
