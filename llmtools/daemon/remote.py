"""The daemon's services seen from a client: what `llmtools.services` hands to commands when
a daemon is there (model calls, llm-exec's runtimes, pages), same interface as in-process.

The daemon itself is reached through `llmtools.daemon.client`; only `llmtools.services`
uses this module, and it decides when to work in-process instead.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator

from llmtools import errors
from llmtools.daemon import protocol
from llmtools.daemon.client import PING_TIMEOUT_S, DaemonClient, raise_for_error

_warned_fallback = False


def _warn_fallback(failure: dict) -> None:
    global _warned_fallback
    if not _warned_fallback:
        from llmtools.notices import warn

        warn(f"{failure.get('message')}; working without it")
        _warned_fallback = True


def reachable_client(*, probe: bool = False) -> DaemonClient | None:
    """A client of a daemon running this code; None (with one warning) when none can be
    had, so the caller works in-process instead.

    Without `probe` nothing is sent yet: the caller's request carries the handshake
    (`same_code=True`), so a model call is one round trip, and an "unserved" error sends
    the caller in-process then (`chat_through`, `fetch_through`). Only a daemon whose pid
    file names other code is replaced here: one from before requests carried their code
    would not refuse them. With `probe` (for a caller that must choose once, as llm-exec's
    runtimes, which hold state): a ping first, and the daemon started if none runs.
    """
    client = DaemonClient()
    if not probe:
        if client.runs_our_code():
            return client
        failure = client.replace_other_code()
        if failure is not None:
            _warn_fallback(failure)
            return None
        return client
    try:
        state = client.answers()
        if state == "silent":  # kill -STOP, or hung: do the work here rather than wait
            _warn_fallback(client.not_answering(PING_TIMEOUT_S))
            return None
        if state == "yes":
            if client.runs_our_code():
                return client
            client.stop()  # another version or checkout: replace it with one running this code
    except OSError:
        pass
    except errors.LlmtoolsError as problem:
        _warn_fallback(protocol.error("ServiceUnavailable", str(problem), errors.ExitStatus.UNAVAILABLE))
        return None
    failure = client.start_or_error()
    if failure is not None:
        _warn_fallback(failure)
        return None
    return client


def chat_through(client: DaemonClient, spec, request, fallback=None) -> Iterator:
    """Provider events for one model call made by the daemon; by `fallback(spec, request)`
    (with one warning) when the daemon could not take the call."""
    from llmtools.providers.base import event_from_json

    fields = dataclasses.asdict(spec)
    for event in client.request("chat", autostart=True, same_code=True, spec=fields, request=vars(request)):
        kind = event["event"]
        provider_event = event_from_json(event)
        if provider_event is not None:
            yield provider_event
        elif kind == "notice":
            show_notice(event)
        elif kind == "error":
            if event.get("unserved") and fallback is not None:
                _warn_fallback(event)
                yield from fallback(spec, request)
                return
            raise_for_error(event)
        elif kind == "end":
            return


def show_notice(event: dict) -> None:
    """A notice the daemon sent on: told here as if it had happened here."""
    from llmtools import notices

    notices.tell(event.get("level") or "note", event["text"])


class DaemonRuntimes:
    """The daemon's RuntimeManager, seen from a client: same methods, same results. Each call
    carries the code check (`same_code`), so a thread never runs under other code."""

    def __init__(self, client: DaemonClient) -> None:
        self.client = client

    def execute(self, thread_id: str, code: str, *, timeout: float, memory_mb: int | None = None,
                context: dict | None = None, sandbox: dict | None = None) -> dict:
        return self.client.call("runtime_execute", same_code=True, autostart=True, thread=thread_id, code=code,
                                timeout=timeout, memory_mb=memory_mb, context=context, sandbox=sandbox)

    def evaluate(self, thread_id: str, expression: str, *, timeout: float,
                 sandbox: dict | None = None, keep_policy: bool = False) -> dict:
        return self.client.call("runtime_evaluate", same_code=True, autostart=True, thread=thread_id,
                                expression=expression, timeout=timeout, sandbox=sandbox,
                                keep_policy=keep_policy)

    def reset(self, thread_id: str) -> dict:
        return self.client.call("runtime_reset", same_code=True, autostart=True, thread=thread_id)

    def discard(self, thread_id: str) -> None:
        """Reset without waiting: how a throwaway thread goes after SIGTERM or Ctrl-C."""
        self.client.notify("runtime_reset", thread=thread_id)

    def interrupt(self, thread_id: str) -> dict:
        return self.client.call("runtime_interrupt", same_code=True, thread=thread_id)

    def threads(self) -> list[dict]:
        return self.client.call("runtime_threads", same_code=True, autostart=True)

    def close(self) -> None:
        """The runtimes belong to the daemon; a client has nothing to close."""


def fetch_through(client: DaemonClient, urls: list[str], *, timeout: float, wait_for: str | None = None,
                  cookies_file: str | None = None, screenshot: bool = False, tool: str = "llm-fetch",
                  fallback=None):
    """FetchResults from the daemon's warm browser, one per URL as each completes; from
    `fallback()` (with one warning) when the daemon could not take the request."""
    from llmtools.content.fetch import FetchResult

    for event in client.request("fetch", autostart=True, same_code=True, urls=urls, timeout=timeout,
                                wait_for=wait_for, screenshot=screenshot, tool=tool,
                                cookies_file=os.path.abspath(cookies_file) if cookies_file else None):
        kind = event["event"]
        if kind == "result":
            failure = event.get("error")
            if failure is None:
                yield FetchResult(event["url"], message=event["message"])
                continue
            yield FetchResult(event["url"], error=errors.error_from_json({"event": "error", **failure}))
        elif kind == "notice":
            show_notice(event)
        elif kind == "error":
            if event.get("unserved") and fallback is not None:
                _warn_fallback(event)
                yield from fallback()
                return
            raise_for_error(event)
