"""Where each slow thing runs: in the daemon when one can be reached, else in this process.

This is the one place that decides. Commands, core code and the runtime helpers ask for a
service here and get the same interface either way; none of them imports the daemon
client. The daemon path is only faster (warm SDK clients, loaded local models, a running
browser, live runtimes); both paths behave the same, since a request carries the caller's
settings. `LLMTOOLS_NO_DAEMON=1` chooses in-process everywhere, and a daemon that cannot
be started is worked around with one warning.

Services: `chat_stream` (model calls), `chat_streams` (many calls to one model), `runtimes`
(llm-exec's Python runtimes), `fetch` (pages through the warm browser), `embedder` (rankers
for llm-map and llm_call), `batches` (providers' batch APIs, for llm-map --batch).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import threading
from collections.abc import Iterable, Iterator
from typing import Any

from llmtools.providers.base import Event, ModelSpec, Request


def daemon_disabled() -> bool:
    return os.environ.get("LLMTOOLS_NO_DAEMON", "") not in ("", "0")


def _daemon(*, probe: bool = False):
    """A client of a daemon running this code, or None. Without `probe` the caller's request
    is the handshake (and starts the daemon if need be), and the caller is given what to do
    in-process should the daemon not take it; with `probe`, a ping decides now."""
    if daemon_disabled():
        return None
    from llmtools.daemon.remote import reachable_client

    return reachable_client(probe=probe)


# --- model calls ------------------------------------------------------------------------------


def in_process_stream(spec: ModelSpec, request: Request) -> Iterator[Event]:
    """Call the provider in this process, with retries, and release it after."""
    from llmtools.providers import load_provider
    from llmtools.providers.retry import stream_with_retries

    provider = load_provider(spec)
    try:
        yield from stream_with_retries(provider, request)
    finally:
        provider.close()


def chat_stream(spec: ModelSpec):
    """A `(spec, request) -> events` callable for `Exchange`: through the daemon for the
    providers worth keeping warm there, else in this process."""
    from llmtools.providers import stays_warm

    if not stays_warm(spec.provider):
        return in_process_stream
    if spec.provider == "local":
        from llmtools.localmodels import ensure_model_file

        # A first-use pull happens here, so its progress shows on the user's terminal rather
        # than in the daemon's log. The daemon is sent the file itself, so every name for one
        # file shares one loaded copy; the caller's spec is left as it was.
        spec = dataclasses.replace(spec, model_id=str(ensure_model_file(spec.model_id, spec.name).resolve()))
    client = _daemon()
    if client is None:
        return in_process_stream
    from llmtools.daemon.remote import chat_through

    return lambda _spec, request: chat_through(client, spec, request, fallback=in_process_stream)


def prepare_calls(spec: ModelSpec) -> None:
    """Do now what the first call to `spec` would do first: reach (or start) the daemon for
    the providers kept warm there, else import the provider and its SDK here. For a command
    that can do it while its input is still arriving (llm-map); a failure is left for the
    call itself to report. A local model is not pulled here: its progress belongs in the
    foreground."""
    from llmtools import providers

    if spec.provider == "local":
        return
    if providers.stays_warm(spec.provider) and _daemon(probe=True) is not None:  # starts one if none runs
        return
    providers.load_provider_class(spec)


class _SharedProvider:
    """A `(spec, request) -> events` callable whose calls share one provider instance: one SDK
    client and connection pool (a new client costs ~0.1 s of TLS set-up), or one loaded model."""

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec
        self.provider: Any = None
        self.lock = threading.Lock()

    def __call__(self, spec: ModelSpec, request: Request) -> Iterator[Event]:
        from llmtools.providers.retry import stream_with_retries

        with self.lock:
            if self.provider is None:
                from llmtools.providers import load_provider

                self.provider = load_provider(self.spec)
        yield from stream_with_retries(self.provider, request)

    def close(self) -> None:
        if self.provider is not None:
            self.provider.close()
            self.provider = None


@contextlib.contextmanager
def chat_streams(spec: ModelSpec) -> Iterator[Any]:
    """Like `chat_stream`, for many calls to one model (llm-map, llm_call over chunks): in
    this process they share one provider, released when the block ends."""
    factory = chat_stream(spec)
    if factory is not in_process_stream:
        yield factory
        return
    shared = _SharedProvider(spec)
    try:
        yield shared
    finally:
        shared.close()


# --- llm-exec's runtimes -----------------------------------------------------------------------


def runtimes() -> tuple[Any, bool]:
    """(runtimes, owned): the daemon's (same methods as a RuntimeManager), or a RuntimeManager
    in this process, which the caller owns and must close."""
    client = _daemon(probe=True)  # a thread's state lives where it started: choose once
    if client is not None:
        from llmtools.daemon.remote import DaemonRuntimes

        return DaemonRuntimes(client), False
    from llmtools.runtime.manager import RuntimeManager

    return RuntimeManager(), True


# --- pages -------------------------------------------------------------------------------------


def fetch(urls: list[str], *, use_browser: bool = True, timeout: float, wait_for: str | None = None,
          cookies_file: str | None = None, cookies: list | None = None, screenshot: bool = False,
          tool: str = "llm-fetch") -> Iterable:
    """FetchResults, one per URL as each completes: through the daemon's warm browser when the
    browser is wanted and there is a URL it could fetch, else in this process."""
    from llmtools.inputs import is_url

    def here() -> Iterable:
        return _fetch_here(urls, use_browser=use_browser, timeout=timeout, wait_for=wait_for,
                           cookies_file=cookies_file, cookies=cookies, screenshot=screenshot, tool=tool)

    if use_browser and any(is_url(url) for url in urls):
        client = _daemon()
        if client is not None:
            from llmtools.daemon.remote import fetch_through

            return fetch_through(client, urls, timeout=timeout, wait_for=wait_for,
                                 cookies_file=cookies_file, screenshot=screenshot, tool=tool, fallback=here)
    return here()


def _fetch_here(urls: list[str], *, use_browser: bool, timeout: float, wait_for: str | None,
                cookies_file: str | None, cookies: list | None, screenshot: bool, tool: str) -> Iterable:
    from llmtools.content.fetch import fetch_each

    if cookies is None and cookies_file:
        from llmtools.content.cookies import load_cookies_txt

        cookies = load_cookies_txt(cookies_file)
    return fetch_each(urls, use_browser=use_browser, timeout=timeout, wait_for=wait_for,
                      cookies=cookies, screenshot=screenshot, tool=tool)


# --- rankers and embedders (llm-map, llm_call) ---------------------------------------------


def embedder(name: str | None = None):
    """The ranker `name` means (`llmtools.mapping.embedders`; default: `[map] embedder` in
    config, else BM25). Always in this process for now: the offline rankers cost nothing to
    start, and a model-backed one is loaded once per command. Holding GGUF embedders warm in
    the daemon is the next step; callers will not change when it moves there."""
    from llmtools.mapping.embedders import make_ranker

    return make_ranker(embedder_name(name))


def embedder_name(flag: str | None = None) -> str:
    """The ranker's name: `flag` (--embedder), else LLMTOOLS_EMBEDDER, else `[map] embedder`."""
    from llmtools.config import setting
    from llmtools.mapping.embedders import DEFAULT_EMBEDDER

    return str(setting("embedder", DEFAULT_EMBEDDER, flag=flag, env="LLMTOOLS_EMBEDDER", table="map", kind=str))


def batches(spec: ModelSpec):
    """The provider's batch API (`llmtools.mapping.batch`), in this process: submitting and
    polling are a few small HTTP calls, and the state that makes a batch resumable lives in
    the data directory, not in any process."""
    from llmtools.mapping.batch import batches_for

    return batches_for(spec)


# --- the daemon itself (`llm daemon ...`) ------------------------------------------------------


def daemon_control():
    """The daemon client, for the commands that manage the daemon itself."""
    from llmtools.daemon import client

    return client
