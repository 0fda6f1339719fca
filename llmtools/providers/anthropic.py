"""Claude through the official `anthropic` SDK (Messages API, streamed).

The SDK is imported when the first request builds the client (see `SdkProvider`). The SDK
never retries here (`max_retries=0`): `llmtools.providers.retry` does that for
every backend alike. Everything the SDK or the transport raises is turned into the
`ProviderError` family with a one-line message that never contains the API key.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from llmtools.errors import (
    InputError,
    ProviderBusy,
    ProviderError,
    ProviderUnreachable,
    UsageError,
)
from llmtools.providers.base import (
    Event,
    Finished,
    Request,
    TextDelta,
    ThinkingDelta,
    Usage,
    prepare_turns,
    schema_name,
)
from llmtools.providers.prompt_cache import mark_cache_breakpoints
from llmtools.providers.sdk import (
    CONNECT_TIMEOUT,
    SdkProvider,
    caused_by,
    connection_reason,
    is_retryable_status,
    one_line,
    retry_after_seconds,
    status_text,
    stream_cut,
    without_credentials,
)

# Anthropic requires max_tokens on every request. 8192 fits every current Claude model's
# output limit; a model can set its own with `max_tokens` in its config options.
DEFAULT_MAX_TOKENS = 8192

# `-z low|medium|high` as thinking budgets. The API refuses budgets under 1024.
THINKING_BUDGETS = {"low": 1024, "medium": 4096, "high": 16384}
MIN_THINKING_BUDGET = 1024
THINKING_OFF = {"0", "off", "none"}

DEFAULT_KEY_ENV = "ANTHROPIC_API_KEY"
DEFAULT_BASE_URL = "https://api.anthropic.com"


# Error types an SSE `error` event may carry that sending the same request again will not fix.
PERMANENT_ERROR_TYPES = {
    "invalid_request_error",
    "authentication_error",
    "permission_error",
    "not_found_error",
    "request_too_large",
    "billing_error",
}


class AnthropicProvider(SdkProvider):
    """Claude models; `max_tokens` is the room for the answer, thinking budget aside."""

    name = "anthropic"

    # --- the client ------------------------------------------------------------

    def _build_client(self) -> Any:
        spec = self.spec
        if not spec.api_key:
            raise UsageError(
                f"model {spec.name} needs an API key: set {spec.api_key_env or DEFAULT_KEY_ENV}"
            )
        import anthropic

        return anthropic.Anthropic(
            api_key=spec.api_key,
            # Given explicitly, so that the SDK does not read ANTHROPIC_BASE_URL: the caller's value is
            # in spec.base_url, and this process may be the daemon, started by someone else.
            base_url=spec.base_url or DEFAULT_BASE_URL,
            max_retries=0,
            timeout=anthropic.Timeout(spec.timeout, connect=min(CONNECT_TIMEOUT, spec.timeout)),
        )

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
        if request.stop:
            # The API ends the answer at the first one and leaves it out of the text.
            params["stop_sequences"] = list(request.stop)
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
        if request.schema is not None:
            params.update(schema_tool(request.schema, forced=budget is None))
        return params

    def stream(self, request: Request) -> Iterator[Event]:
        client = self._get_client()
        params = self.request_params(request)
        if request.cache:
            mark_cache_breakpoints(params)
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
                    elif delta.type == "input_json_delta" and delta.partial_json:
                        # The schema tool's input, which is the structured answer.
                        answered = True
                        yield TextDelta(delta.partial_json)
                elif kind == "message_start":
                    yield _usage_event(event.message.usage, with_output=False)
                elif kind == "message_delta":
                    stop_reason = event.delta.stop_reason or stop_reason
                    yield _usage_event(event.usage, with_output=True)
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
                raise stream_cut(answered, "connection closed") from error
        if not stopped:
            raise stream_cut(answered, "the stream ended")
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
            if caused_by(error, httpx2.ConnectTimeout):
                return ProviderUnreachable(
                    f"cannot connect to {self._shown_base_url(client)}: "
                    f"no answer within {min(CONNECT_TIMEOUT, self.spec.timeout):g}s"
                )
            return ProviderBusy(f"no response within {self.spec.timeout:g}s")
        if isinstance(error, anthropic.APIConnectionError):
            return ProviderUnreachable(
                f"cannot connect to {self._shown_base_url(client)}: {connection_reason(error)}"
            )
        if isinstance(error, anthropic.AnthropicError):
            return ProviderError(one_line(str(error), self.spec.api_key))
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
        return without_credentials(self.spec.base_url or str(client.base_url) or DEFAULT_BASE_URL)


def schema_tool(schema: dict, *, forced: bool) -> dict[str, Any]:
    """Structured output the Messages API way: one tool whose input schema is the answer's,
    which the model must call. With thinking on, the API refuses a forced tool choice, so the
    model is left to choose it (the prompt asks for the JSON; the caller checks it)."""
    name = schema_name(schema)
    tool = {"name": name, "input_schema": schema,
            "description": str(schema.get("description") or "Give the answer as this tool's input.")}
    choice = {"type": "tool", "name": name} if forced else {"type": "auto"}
    return {"tools": [tool], "tool_choice": choice}


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


def _usage_event(usage: Any, *, with_output: bool) -> Usage:
    """The API's usage as ours: its `input_tokens` counts only the uncached part of the
    prompt, so the whole prompt is that plus the cache reads and writes."""
    uncached = getattr(usage, "input_tokens", None)
    written = getattr(usage, "cache_creation_input_tokens", None)
    read = getattr(usage, "cache_read_input_tokens", None)
    whole = None if uncached is None else uncached + (written or 0) + (read or 0)
    return Usage(input_tokens=whole,
                 output_tokens=usage.output_tokens if with_output else None,
                 cache_read_tokens=read if uncached is not None else None,
                 cache_write_tokens=written if uncached is not None else None)


# --- errors particular to this API ----------------------------------------


def _status_error(
    status: int, message: str, headers: Mapping[str, str], *, error_code: str | None = None
) -> ProviderError:
    text = status_text(status, message)
    if status == 429 and error_code and "spend_limit" in error_code:
        return ProviderError(text)  # a spending cap does not lift by waiting a few seconds
    if is_retryable_status(status):
        return ProviderBusy(text, retry_after=retry_after_seconds(headers))
    return ProviderError(text)


def _server_message(api_message: object, body: object, secret: str | None) -> str:
    if isinstance(api_message, str) and api_message:
        return one_line(api_message, secret)
    # A bare text body is the message (a proxy's HTML error page is not worth showing).
    if isinstance(body, str) and not body.lstrip().startswith("<"):
        return one_line(body, secret)
    return ""
