"""Claude through the official `anthropic` SDK (Messages API, streamed).

The SDK is imported when the first request builds the client, not when this module is
imported: importing `anthropic` costs well over a second, and the registry, `--help`
and stack plumbing must not pay for it. One client is built per provider instance and
reused, so the daemon keeps its connection pool warm across requests; the SDK client is
safe to share between threads.

The SDK never retries here (`max_retries=0`): `llmtools.providers.retry` does that for
every backend alike. Everything the SDK or the transport raises is turned into the
`ProviderError` family with a one-line message that never contains the API key.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any

from llmtools.errors import (
    InputError,
    ProviderBusy,
    ProviderError,
    ProviderUnreachable,
    StreamCut,
    UsageError,
)
from llmtools.providers.base import (
    Event,
    Finished,
    ModelSpec,
    Provider,
    Request,
    TextDelta,
    ThinkingDelta,
    Usage,
    prepare_turns,
)

# Anthropic requires max_tokens on every request. 8192 fits every current Claude model's
# output limit; a model can set its own with `max_tokens` in its config options.
DEFAULT_MAX_TOKENS = 8192

# `-z low|medium|high` as thinking budgets. The API refuses budgets under 1024.
THINKING_BUDGETS = {"low": 1024, "medium": 4096, "high": 16384}
MIN_THINKING_BUDGET = 1024
THINKING_OFF = {"0", "off", "none"}

# A host that has not accepted the connection within a few seconds is not going to;
# the read timeout (spec.timeout) is the one that must allow for a slow model.
CONNECT_TIMEOUT = 5.0

DEFAULT_KEY_ENV = "ANTHROPIC_API_KEY"
DEFAULT_BASE_URL = "https://api.anthropic.com"

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

# Error types an SSE `error` event may carry that sending the same request again will not fix.
PERMANENT_ERROR_TYPES = {
    "invalid_request_error",
    "authentication_error",
    "permission_error",
    "not_found_error",
    "request_too_large",
    "billing_error",
}


class AnthropicProvider(Provider):
    """Claude models; `max_tokens` is the room for the answer, thinking budget aside."""

    name = "anthropic"
    supports_images = True
    supports_thinking = True

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__(spec)
        self._client: Any = None
        self._client_lock = threading.Lock()

    # --- the client ------------------------------------------------------------

    def _get_client(self) -> Any:
        client = self._client
        if client is None:
            with self._client_lock:
                if self._client is None:
                    self._client = self._build_client()
                client = self._client
        return client

    def _build_client(self) -> Any:
        spec = self.spec
        if not spec.api_key:
            raise UsageError(
                f"model {spec.name} needs an API key: set {spec.api_key_env or DEFAULT_KEY_ENV}"
            )
        import anthropic

        return anthropic.Anthropic(
            api_key=spec.api_key,
            base_url=spec.base_url or None,
            max_retries=0,
            timeout=anthropic.Timeout(spec.timeout, connect=min(CONNECT_TIMEOUT, spec.timeout)),
        )

    def close(self) -> None:
        with self._client_lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    # --- the request -----------------------------------------------------------

    def request_params(self, request: Request) -> dict[str, Any]:
        """The keyword arguments for `messages.create`, apart from `stream`."""
        system, turns = prepare_turns(request.messages)
        answer_room = (request.max_tokens or self.spec.options.get("max_tokens")
                       or DEFAULT_MAX_TOKENS)
        params: dict[str, Any] = {
            "model": self.spec.model_id,
            "messages": [{"role": turn["role"], "content": _content_blocks(turn["content"])}
                         for turn in turns],
            "max_tokens": answer_room,
        }
        if system:
            params["system"] = system
        budget = thinking_budget(request.thinking)
        if budget is not None:
            # The budget counts against max_tokens, so the answer keeps its own room on top.
            params["thinking"] = {"type": "enabled", "budget_tokens": budget}
            params["max_tokens"] = budget + answer_room
        elif request.temperature is not None:
            # This SDK version has no `temperature` argument; a value the user asked for
            # explicitly is still sent, and the API says so if the model refuses it.
            # With thinking on the API rejects any temperature, so none is sent then.
            params["extra_body"] = {"temperature": request.temperature}
        return params

    def stream(self, request: Request) -> Iterator[Event]:
        client = self._get_client()
        params = self.request_params(request)
        try:
            response_stream = client.messages.create(stream=True, **params)
        except Exception as error:
            raise self._request_failure(error, client) from error
        with response_stream:
            yield from self._read_events(response_stream)

    def _read_events(self, response_stream: Any) -> Iterator[Event]:
        import anthropic
        import httpx2

        answered = False
        stopped = False
        stop_reason: str | None = None
        try:
            # Read on past message_stop to the end of the body: a response closed before
            # its end takes its connection with it instead of returning it to the pool.
            for event in response_stream:
                kind = event.type
                if kind == "content_block_delta":
                    delta = event.delta
                    if delta.type == "text_delta" and delta.text:
                        answered = True
                        yield TextDelta(delta.text)
                    elif delta.type == "thinking_delta" and delta.thinking:
                        answered = True
                        yield ThinkingDelta(delta.thinking)
                elif kind == "message_start":
                    yield Usage(input_tokens=_input_tokens(event.message.usage))
                elif kind == "message_delta":
                    stop_reason = event.delta.stop_reason or stop_reason
                    yield Usage(
                        input_tokens=_input_tokens(event.usage),
                        output_tokens=event.usage.output_tokens,
                    )
                elif kind == "message_stop":
                    stopped = True
        except anthropic.APIStatusError as error:
            # An `event: error` inside a 200 stream (overloaded_error, api_error, ...).
            raise self._stream_error_event(error) from error
        except (httpx2.TimeoutException, anthropic.APITimeoutError) as error:
            if not stopped:
                raise ProviderBusy(f"no response within {self.spec.timeout:g}s") from error
        except (httpx2.TransportError, anthropic.APIConnectionError) as error:
            if not stopped:
                raise _cut(answered, "connection closed") from error
        if not stopped:
            raise _cut(answered, "the stream ended")
        yield Finished(stop_reason)

    # --- errors ----------------------------------------------------------------

    def _request_failure(self, error: Exception, client: Any) -> Exception:
        """Map what `messages.create` raised (before any event arrived) to our errors."""
        import anthropic
        import httpx2

        if isinstance(error, anthropic.APIStatusError):
            return _status_error(
                error.status_code,
                _server_message(error.api_message, error.body, self.spec.api_key),
                error.response.headers,
                error_code=error.error_code,
            )
        if isinstance(error, anthropic.APITimeoutError):
            if _caused_by(error, httpx2.ConnectTimeout):
                return ProviderUnreachable(
                    f"cannot connect to {self._shown_base_url(client)}: "
                    f"no answer within {min(CONNECT_TIMEOUT, self.spec.timeout):g}s"
                )
            return ProviderBusy(f"no response within {self.spec.timeout:g}s")
        if isinstance(error, anthropic.APIConnectionError):
            return ProviderUnreachable(
                f"cannot connect to {self._shown_base_url(client)}: {_connection_reason(error)}"
            )
        if isinstance(error, anthropic.AnthropicError):
            return ProviderError(_one_line(str(error), self.spec.api_key))
        raise error

    def _stream_error_event(self, error: Any) -> ProviderError:
        error_type = error.type or "error"
        message = _server_message(error.api_message, error.body, self.spec.api_key)
        text = f"{error_type.replace('_', ' ')} during the answer"
        text += f": {message}" if message else ""
        if error_type in PERMANENT_ERROR_TYPES:
            return ProviderError(text)
        return ProviderBusy(text)

    def _shown_base_url(self, client: Any) -> str:
        return _without_credentials(self.spec.base_url or str(client.base_url) or DEFAULT_BASE_URL)


# --- turning our parts into content blocks ----------------------------------------


def _content_blocks(content: str | list) -> str | list[dict]:
    if isinstance(content, str):
        return content
    blocks: list[dict] = []
    for part in content:
        kind = part.get("type")
        if kind == "text":
            if part["text"]:  # the API refuses empty text blocks
                blocks.append({"type": "text", "text": part["text"]})
        elif kind == "image":
            source = {"type": "base64", "media_type": part["media_type"], "data": part["data"]}
            blocks.append({"type": "image", "source": source})
        else:
            raise InputError(f"cannot send a message part of type {kind!r} to an Anthropic model")
    return blocks


def thinking_budget(value: str | None) -> int | None:
    """`-z` as a token budget: a number, or an effort name; None means no thinking."""
    if value is None:
        return None
    word = value.strip().lower()
    if word in THINKING_OFF:
        return None
    if word in THINKING_BUDGETS:
        return THINKING_BUDGETS[word]
    try:
        budget = int(word)
    except ValueError:
        efforts = ", ".join(THINKING_BUDGETS)
        raise UsageError(
            f"thinking must be a token budget or one of {efforts}, not {value!r}") from None
    if budget < MIN_THINKING_BUDGET:
        raise UsageError(f"a thinking budget for Anthropic models must be at least "
                         f"{MIN_THINKING_BUDGET} tokens, not {budget}")
    return budget


def _input_tokens(usage: Any) -> int | None:
    # Prompt-cache reads and writes are input too; without cache_control they are zero.
    parts = [usage.input_tokens, getattr(usage, "cache_creation_input_tokens", None),
             getattr(usage, "cache_read_input_tokens", None)]
    if usage.input_tokens is None:
        return None
    return sum(part or 0 for part in parts)


# --- error helpers (the OpenAI provider has the same ones) ---------------------------


def _cut(answered: bool, how: str) -> ProviderError:
    # Before any of the answer arrived, a dropped stream is just a failed attempt and may
    # be retried; after, resending would repeat what the user already has.
    if answered:
        return StreamCut(f"{how} before the answer finished")
    return ProviderBusy(f"{how} before the answer started")


def _status_error(
    status: int, message: str, headers: Mapping[str, str], *, error_code: str | None = None
) -> ProviderError:
    words = STATUS_WORDS.get(status, "server error" if status >= 500 else "HTTP error")
    text = f"{words} ({status})" + (f": {message}" if message else "")
    if status == 429 and error_code and "spend_limit" in error_code:
        return ProviderError(text)  # a spending cap does not lift by waiting a few seconds
    if status in (408, 429) or status >= 500:
        return ProviderBusy(text, retry_after=retry_after_seconds(headers))
    return ProviderError(text)


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


def _server_message(api_message: object, body: object, secret: str | None) -> str:
    if isinstance(api_message, str) and api_message:
        return _one_line(api_message, secret)
    # A bare text body is the message (a proxy's HTML error page is not worth showing).
    if isinstance(body, str) and not body.lstrip().startswith("<"):
        return _one_line(body, secret)
    return ""


def _one_line(text: str, secret: str | None, limit: int = 300) -> str:
    if secret:
        text = text.replace(secret, "[API key]")
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _caused_by(error: BaseException, kind: type[BaseException]) -> bool:
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, kind):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _connection_reason(error: BaseException) -> str:
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


def _without_credentials(url: str) -> str:
    return re.sub(r"(?<=//)[^/@]*@", "", url).rstrip("/")
