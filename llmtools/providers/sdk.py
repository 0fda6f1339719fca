"""What the SDK-backed providers (Anthropic, OpenAI) share: a lazily built, reused client,
and turning HTTP and transport failures into one-line `ProviderError`s without secrets."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Mapping
from typing import Any

from llmtools.errors import ProviderBusy, ProviderError, StreamCut
from llmtools.providers.base import ModelSpec, Provider

# A host that has not accepted the connection within a few seconds is not going to;
# the read timeout (spec.timeout) is the one that must allow for a slow model.
CONNECT_TIMEOUT = 5.0

STATUS_WORDS = {
    400: "bad request",
    401: "authentication failed",
    402: "payment required",
    403: "permission denied",
    404: "not found",
    408: "request timed out",
    409: "conflict",
    413: "request too large",
    422: "unprocessable request",
    429: "rate limited",
    500: "server error",
    502: "bad gateway",
    503: "service unavailable",
    504: "gateway timeout",
    529: "overloaded",
}


class SdkProvider(Provider):
    """A provider whose SDK client is built on first use and then shared.

    The SDK is imported in `_build_client`, not at module import: importing `anthropic`
    costs well over a second, and the registry, `--help` and stack plumbing must not pay
    for it. One client per provider instance is reused (SDK clients are thread-safe), so
    the daemon keeps its connection pool warm across requests.
    """

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__(spec)
        self._client: Any = None
        self._client_lock = threading.Lock()

    def _build_client(self) -> Any:
        raise NotImplementedError

    def _get_client(self) -> Any:
        client = self._client
        if client is None:
            with self._client_lock:
                if self._client is None:
                    self._client = self._build_client()
                client = self._client
        return client

    def close(self) -> None:
        with self._client_lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()


def stream_cut(answered: bool, how: str) -> ProviderError:
    # Before any of the answer arrived, a dropped stream is just a failed attempt and may
    # be retried; after, resending would repeat what the user already has.
    if answered:
        return StreamCut(f"{how} before the answer finished")
    return ProviderBusy(f"{how} before the answer started")


def status_text(status: int, message: str) -> str:
    words = STATUS_WORDS.get(status, "server error" if status >= 500 else "HTTP error")
    return f"{words} ({status})" + (f": {message}" if message else "")


def is_retryable_status(status: int) -> bool:
    return status in (408, 429) or status >= 500


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """The pause a server asked for: `retry-after-ms`, else `retry-after` (seconds or a date)."""
    milliseconds = headers.get("retry-after-ms")
    if milliseconds:
        try:
            return max(0.0, float(milliseconds) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    import email.utils  # only for the rare date form; it is slow to import

    date = email.utils.parsedate_tz(value)
    if date is None:
        return None
    return max(0.0, email.utils.mktime_tz(date) - time.time())


def one_line(text: str, secret: str | None, limit: int = 300) -> str:
    """Server text made fit for an error line: the key scrubbed, whitespace folded, capped."""
    if secret:
        text = text.replace(secret, "[API key]")
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= limit else text[: limit - 3] + "..."


def caused_by(error: BaseException, kind: type[BaseException]) -> bool:
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, kind):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def connection_reason(error: BaseException) -> str:
    """'connection refused', 'name or service not known': the OS's words, not the SDK's."""
    innermost: BaseException = error
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, OSError) and seen.strerror:
            reason = seen.strerror
            break
        innermost = seen
        seen = seen.__cause__ or seen.__context__
    else:
        reason = re.sub(r"^\[Errno -?\d+\]\s*", "", str(innermost)) or type(innermost).__name__
    return reason[:1].lower() + reason[1:]


def without_credentials(url: str) -> str:
    return re.sub(r"(?<=//)[^/@]*@", "", url).rstrip("/")
