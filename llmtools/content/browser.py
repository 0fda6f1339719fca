"""Headless Chromium through Playwright, launched once and reused for many pages.

`Browser` owns the whole lifecycle so that a long-lived process (the daemon) can hold
one warm and hand it to `llmtools.content.fetch`; a command without the daemon makes
one for its own call. Launching costs 1-1.5 s and closing ~0.1-1 s; a warm browser
renders a local page in under 0.1 s.

Threads: Playwright's sync API only works on the thread that started it, so the
browser lives on one worker thread of its own and `render()` hands it jobs through a
queue. `render()` may be called from any thread; calls are served one at a time, in
order (one page at a time is also what one browser's memory allows on a small machine).

Isolation: requests without cookies share one browser context and one tab (a fresh
context costs 0.2-0.5 s), and the context's cookies are cleared after each request so
one site's session never rides along to the next request. Cache and localStorage are
shared, as in one browser profile. A request with cookies gets a fresh context of its
own, closed afterwards.

What happens to one page (loading, settling, screenshots, downloads, error mapping) is
in `rendering.py`; this module owns the browser process and its thread.

Executable: `LLMTOOLS_BROWSER` if set, else the first of chromium, chromium-browser,
google-chrome on PATH (Debian's `chromium` is the one tested), else Playwright's own
download if one is installed.
"""

from __future__ import annotations

import os
import queue
import shutil
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from llmtools.content.rendering import VIEWPORT, Deadline, RenderedPage, first_line, load, navigation_error
from llmtools.errors import InputError, ServiceUnavailable, TemporaryFailure

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# Quiet, headless, no background traffic of its own: only the pages we ask for touch the
# network. --no-sandbox because containers and CI often run as root without user namespaces.
CHROMIUM_ARGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
)
LAUNCH_TIMEOUT_S = 30.0


class BrowserUnavailable(ServiceUnavailable):
    """No browser could be started (or it went away and would not come back)."""


def find_chromium() -> str | None:
    configured = os.environ.get("LLMTOOLS_BROWSER")
    if configured:
        return configured
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


class Browser:
    """One headless Chromium, started on first use (or by `start()`), reused until `close()`.

        with Browser() as browser:
            page = browser.render("https://example.org/", timeout=20)

    Thread-safe: see the module docstring. Raises BrowserUnavailable when Chromium or
    Playwright is missing or Chromium will not start.
    """

    def __init__(self, executable_path: str | None = None, *, args: tuple[str, ...] = CHROMIUM_ARGS) -> None:
        self.executable_path = executable_path
        self.args = list(args)
        self._jobs: queue.Queue = queue.Queue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False
        # Owned by the worker thread only:
        self._playwright: Any = None
        self._browser: Any = None
        self._context: Any = None
        self._page: Any = None
        self._user_agent: str | None = None

    # --- public API (any thread) ------------------------------------------------------

    def start(self) -> None:
        """Launch now rather than on the first render (the daemon warms up this way)."""
        self._call(self._ensure_browser)

    def render(
        self,
        url: str,
        *,
        timeout: float = 30.0,
        wait_for: str | None = None,
        cookies: list[dict] | None = None,
        screenshot: bool = False,
    ) -> RenderedPage:
        """Load `url`, let its scripts run, and return what the browser has.

        `timeout` bounds the whole render (navigation, settling, `wait_for`, screenshot).
        `cookies` are Playwright cookie dicts (see `Cookie.for_playwright`). HTTP error
        statuses are returned, not raised: the caller decides. Raises TemporaryFailure on
        timeouts, ServiceUnavailable when the host cannot be reached (TLS included),
        UsageError for a malformed `wait_for` selector.
        """
        return self._call(self._render, url, timeout, wait_for, cookies, screenshot)

    @property
    def launched(self) -> bool:
        """Whether Chromium is running now (it starts on the first render)."""
        return self._browser is not None and not self._closed

    def close(self, timeout: float = 10.0) -> None:
        """Close Chromium and the worker thread; waits at most `timeout` seconds for a
        render in progress (the thread is a daemon thread, so exiting never hangs on it)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            thread = self._thread
        if thread is not None:
            self._jobs.put(None)
            thread.join(timeout)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        # After Ctrl-C do not wait out a page load in progress.
        self.close(timeout=2.0 if exc_type else 10.0)

    # --- the worker thread ----------------------------------------------------------------

    def _call(self, function: Callable, *args: Any) -> Any:
        with self._lock:
            if self._closed:
                raise BrowserUnavailable("the browser has been closed")
            if self._thread is None:
                self._thread = threading.Thread(target=self._serve, name="llmtools-browser", daemon=True)
                self._thread.start()
        future: Future = Future()
        self._jobs.put((function, args, future))
        return future.result()

    def _serve(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                break
            function, args, future = job
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(function(*args))
            except BaseException as error:  # handed to the caller's thread
                future.set_exception(error)
        self._shutdown()

    def _shutdown(self) -> None:
        for close in (lambda: self._browser and self._browser.close(),
                      lambda: self._playwright and self._playwright.stop()):
            try:
                close()
            except Exception:  # already gone: nothing left to release
                pass
        self._browser = self._context = self._page = self._playwright = None

    def _ensure_browser(self) -> Any:
        if self._browser is not None and self._browser.is_connected():
            return self._browser
        if self._browser is not None:  # crashed or killed: start afresh
            self._shutdown()
        try:
            from playwright.sync_api import Error as PlaywrightError
            from playwright.sync_api import sync_playwright
        except ImportError:
            raise BrowserUnavailable("the playwright Python package is not installed") from None
        path = self.executable_path or find_chromium()
        if path is not None and not (os.path.isfile(path) and os.access(path, os.X_OK)):
            raise BrowserUnavailable(f"{path} is not an executable browser")
        try:
            self._playwright = sync_playwright().start()
            self._browser = self._playwright.chromium.launch(
                executable_path=path, args=self.args, headless=True, timeout=LAUNCH_TIMEOUT_S * 1000)
        except PlaywrightError as error:
            self._shutdown()
            if path is None:
                raise BrowserUnavailable(
                    "no Chromium found (install Debian's chromium or set LLMTOOLS_BROWSER)") from None
            raise BrowserUnavailable(f"cannot start {path}: {first_line(error.message or str(error))}") from None
        # Headless Chromium announces itself as "HeadlessChrome", which some sites refuse.
        major = self._browser.version.split(".")[0]
        self._user_agent = (f"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                            f"Chrome/{major}.0.0.0 Safari/537.36")
        return self._browser

    def _new_context(self) -> Any:
        return self._ensure_browser().new_context(viewport=VIEWPORT, user_agent=self._user_agent)

    def _shared_page(self) -> Any:
        browser = self._ensure_browser()
        if self._context is None or self._context.browser is not browser:
            self._context = self._new_context()
            self._page = None
        if self._page is None or self._page.is_closed():
            self._page = self._context.new_page()
        return self._page

    def _render(self, url: str, timeout: float, wait_for: str | None,
                cookies: list[dict] | None, screenshot: bool) -> RenderedPage:
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        deadline = Deadline(timeout)
        own_context = None
        try:
            if cookies:
                own_context = self._new_context()
                try:
                    own_context.add_cookies(cookies)
                except PlaywrightError as error:
                    own_context.close()
                    raise InputError(f"a cookie the browser will not take: {first_line(error.message)}") from None
                page = own_context.new_page()
            else:
                page = self._shared_page()
        except PlaywrightError as error:
            if own_context is not None:
                own_context.close()
            raise BrowserUnavailable(f"the browser failed: {first_line(error.message)}") from None

        pending = {"count": 0}
        downloads: list[Any] = []

        def on_request(request):
            if request.resource_type in ("fetch", "xhr"):
                pending["count"] += 1

        def on_request_done(request):
            if request.resource_type in ("fetch", "xhr"):
                pending["count"] -= 1

        def on_download(download):  # Playwright needs a function it can tag, not a bound builtin
            downloads.append(download)

        listeners = [("request", on_request), ("requestfinished", on_request_done),
                     ("requestfailed", on_request_done), ("download", on_download)]
        for event, listener in listeners:
            page.on(event, listener)
        try:
            return load(page, url, deadline, wait_for=wait_for, screenshot=screenshot,
                        pending_requests=lambda: pending["count"], downloads=downloads)
        except PlaywrightTimeout:
            raise TemporaryFailure(f"timed out after {deadline.seconds:g} s") from None
        except PlaywrightError as error:
            if "has been closed" in error.message or not self._browser.is_connected():
                raise TemporaryFailure("the browser went away during the request") from None
            raise navigation_error(error.message) from None
        finally:
            self._after_request(page, own_context, listeners)

    def _after_request(self, page: Any, own_context: Any, listeners: list) -> None:
        """Leave the shared tab blank and cookie-free for the next request."""
        try:
            if own_context is not None:
                own_context.close()
                return
            for event, listener in listeners:
                page.remove_listener(event, listener)
            # Navigating away stops the page's timers and sockets while the browser idles.
            page.goto("about:blank", timeout=5000)
            self._context.clear_cookies()
        except Exception:
            # The tab is in a bad state (crashed, stuck): the next request opens a new one.
            try:
                page.close()
            except Exception:
                pass
            self._page = None
