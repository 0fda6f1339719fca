"""OpenAI chat completions through the official `openai` SDK, streamed.

Serves the OpenAI API itself and any OpenAI-compatible server named by `spec.base_url`
(llama.cpp server, llamafile, vLLM, Ollama). The two differ in small ways handled here:
compatible servers usually need no key, understand `max_tokens` rather than
`max_completion_tokens`, may stream reasoning text as `reasoning_content` (llama.cpp,
vLLM) or `reasoning` (Ollama), and may send no usage at all.

As with the Anthropic provider, the SDK is imported when the first request builds the
client, one client per provider instance is reused (and shared between threads), the SDK
never retries (`llmtools.providers.retry` does), and all failures become the
`ProviderError` family with one-line messages that never contain the API key.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

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

# Compatible servers mostly ignore the key, but the SDK will not build a client without
# one; this is what llama.cpp's own documentation passes.
PLACEHOLDER_KEY = "sk-no-key-required"

# `-z` words the API takes as reasoning_effort, passed through as they are.
EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh", "max")
# A numeric `-z` budget goes to the nearest effort; the boundaries sit halfway (on a log
# scale) between the budgets the Anthropic provider gives low/medium/high: 1024/4096/16384.
EFFORT_FOR_BUDGET = ((2048, "low"), (8192, "medium"))


DEFAULT_KEY_ENV = "OPENAI_API_KEY"
DEFAULT_BASE_URL = "https://api.openai.com/v1"


# Error types or codes in a mid-stream `{"error": ...}` chunk that a resend will not fix.
PERMANENT_ERROR_KINDS = {"invalid_request_error", "authentication_error", "permission_error",
                         "invalid_api_key", "model_not_found", "context_length_exceeded"}


class OpenAIProvider(SdkProvider):
    name = "openai"

    @property
    def is_official_api(self) -> bool:
        if not self.spec.base_url:
            return True
        host = urlsplit(self.spec.base_url).hostname or ""
        return host == "openai.com" or host.endswith(".openai.com")

    # --- the client ------------------------------------------------------------

    def _build_client(self) -> Any:
        spec = self.spec
        api_key = spec.api_key
        if not api_key:
            if not spec.base_url:
                raise UsageError(
                    f"model {spec.name} needs an API key: set {spec.api_key_env or DEFAULT_KEY_ENV}"
                )
            api_key = PLACEHOLDER_KEY
        import openai

        return openai.OpenAI(
            api_key=api_key,
            # Given explicitly, so that the SDK does not read OPENAI_BASE_URL: the caller's value is
            # in spec.base_url, and this process may be the daemon, started by someone else.
            base_url=spec.base_url or DEFAULT_BASE_URL,
            max_retries=0,
            timeout=openai.Timeout(spec.timeout, connect=min(CONNECT_TIMEOUT, spec.timeout)),
        )

    # --- the request -----------------------------------------------------------

    def request_params(self, request: Request) -> dict[str, Any]:
        """The keyword arguments for `chat.completions.create`, apart from `stream`."""
        system, turns = prepare_turns(request.messages)
        messages: list[dict[str, Any]] = []
        if system:
            messages.append({"role": "system", "content": system})
        messages += [
            {"role": turn["role"], "content": _chat_content(turn["content"])} for turn in turns
        ]
        params: dict[str, Any] = {
            "model": self.spec.model_id,
            "messages": messages,
            "stream_options": {"include_usage": True},
        }
        max_tokens = request.max_tokens or self.spec.options.get("max_tokens")
        if max_tokens:
            # The OpenAI API deprecated `max_tokens` and its reasoning models refuse it;
            # they take `max_completion_tokens`. llama.cpp's server, llamafile and Ollama
            # know only `max_tokens` (vLLM takes both), so a compatible server gets that.
            key = "max_completion_tokens" if self.is_official_api else "max_tokens"
            params[key] = max_tokens
        effort = reasoning_effort(request.thinking)
        if effort is not None:
            params["reasoning_effort"] = effort
        elif request.temperature is not None:
            # Reasoning models refuse any temperature but the default.
            params["temperature"] = request.temperature
        if request.stop and not (self.is_official_api and _refuses_stop(self.spec.model_id)):
            # The API takes up to four and leaves the one that matched out of the text.
            params["stop"] = list(request.stop)[:4]
        if request.schema is not None:
            params["response_format"] = self.response_format(request.schema)
        return params

    def response_format(self, schema: dict) -> dict[str, Any]:
        """The API's structured output: `json_schema`, strict when the schema allows it.
        Length limits are left to the caller's check: strict mode does not take them."""
        sent = without_key(schema, "maxLength")
        return {"type": "json_schema", "json_schema": {
            "name": schema_name(schema), "schema": sent, "strict": is_strict_schema(sent)}}

    def stream(self, request: Request) -> Iterator[Event]:
        client = self._get_client()
        params = self.request_params(request)
        # The raw body is read here rather than through the SDK's `Stream`, which stops
        # reading at `data: [DONE]` and closes the response short of its end: that
        # closes the connection instead of returning it to the pool, and the daemon's
        # warm client would then pay a new TCP (and TLS) handshake on every request.
        # Reading it ourselves also tells a finished stream from one that just stopped.
        with contextlib.ExitStack() as cleanup:
            try:
                response = cleanup.enter_context(
                    client.chat.completions.with_streaming_response.create(stream=True, **params))
            except Exception as error:
                raise self._request_failure(error, client) from error
            yield from self._read_chunks(response.iter_lines())

    def _read_chunks(self, lines: Iterator[str]) -> Iterator[Event]:
        import httpx2

        answered = False
        done = False
        finish_reason: str | None = None
        try:
            for line in lines:
                # Only `data:` lines matter; blank separators, `: keep-alive` comments
                # and the odd `event:` line some servers add are skipped.
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    done = True  # read on to the end of the body, for the connection's sake
                    continue
                chunk = _parse_chunk(data)
                if chunk.get("error"):
                    raise self._stream_error_chunk(chunk["error"])
                usage = chunk.get("usage")
                if isinstance(usage, dict):
                    yield _usage_event(usage)
                for choice in chunk.get("choices") or ():
                    if choice.get("index", 0) != 0:
                        continue
                    delta = choice.get("delta") or {}
                    reasoning = delta.get("reasoning_content") or delta.get("reasoning")
                    if isinstance(reasoning, str) and reasoning:
                        answered = True
                        yield ThinkingDelta(reasoning)
                    content = delta.get("content")
                    if isinstance(content, str) and content:
                        answered = True
                        yield TextDelta(content)
                    finish_reason = choice.get("finish_reason") or finish_reason
        except httpx2.TimeoutException as error:
            if not done:
                raise ProviderBusy(f"no response within {self.spec.timeout:g}s") from error
        except httpx2.TransportError as error:
            if not done:
                raise stream_cut(answered, "connection closed") from error
        # A server that leaves out `[DONE]` but said why it stopped has still finished.
        if not (done or finish_reason):
            raise stream_cut(answered, "the stream ended")
        yield Finished(finish_reason)

    # --- errors ----------------------------------------------------------------

    def _request_failure(self, error: Exception, client: Any) -> Exception:
        """Map what `chat.completions.create` raised (before any chunk arrived) to our errors."""
        import httpx2
        import openai

        if isinstance(error, openai.APIStatusError):
            body = error.body  # the SDK hands over the inner `error` object when there is one
            message = _server_message(body, self.spec.api_key)
            kind = _error_kind(body)
            failure = _status_error(error.status_code, message, error.response.headers, kind=kind)
            if error.status_code == 401 and not self.spec.api_key:
                failure = ProviderError(f"{failure}; {self.spec.key_hint(DEFAULT_KEY_ENV)}")
            return failure
        if isinstance(error, openai.APITimeoutError):
            if caused_by(error, httpx2.ConnectTimeout):
                return ProviderUnreachable(
                    f"cannot connect to {self._shown_base_url(client)}: "
                    f"no answer within {min(CONNECT_TIMEOUT, self.spec.timeout):g}s"
                )
            return ProviderBusy(f"no response within {self.spec.timeout:g}s")
        if isinstance(error, openai.APIConnectionError):
            return ProviderUnreachable(
                f"cannot connect to {self._shown_base_url(client)}: {connection_reason(error)}"
            )
        if isinstance(error, openai.OpenAIError):
            return ProviderError(one_line(str(error), self.spec.api_key))
        raise error

    def _stream_error_chunk(self, error: object) -> ProviderError:
        """A `data: {"error": ...}` chunk inside a 200 stream (vLLM, llama.cpp, OpenAI)."""
        message = _server_message(error, self.spec.api_key)
        text = "error during the answer" + (f": {message}" if message else "")
        if _error_kind(error) & PERMANENT_ERROR_KINDS:
            return ProviderError(text)
        return ProviderBusy(text)

    def _shown_base_url(self, client: Any) -> str:
        return without_credentials(self.spec.base_url or str(client.base_url) or DEFAULT_BASE_URL)


def _usage_event(usage: dict[str, Any]) -> Usage:
    """`prompt_tokens` is the whole prompt; OpenAI caches prefixes on its own and says how
    much of it came from the cache in `prompt_tokens_details.cached_tokens` (writes are
    not billed apart, so there are none to report)."""
    details = usage.get("prompt_tokens_details")
    cached = details.get("cached_tokens") if isinstance(details, dict) else None
    return Usage(input_tokens=usage.get("prompt_tokens"),
                 output_tokens=usage.get("completion_tokens"),
                 cache_read_tokens=cached if isinstance(cached, int) else None)


def _parse_chunk(data: str) -> dict[str, Any]:
    try:
        chunk = json.loads(data)
    except ValueError:
        raise ProviderBusy(f"unreadable chunk in the stream: {one_line(data, None, 80)}") from None
    return chunk if isinstance(chunk, dict) else {}


# --- turning our parts into chat content ------------------------------------------


def _chat_content(content: str | list) -> str | list[dict]:
    """Text-only content as one string: many compatible servers accept nothing else."""
    if isinstance(content, str):
        return content
    if all(part.get("type") == "text" for part in content):
        return "\n".join(part["text"] for part in content)
    parts: list[dict] = []
    for part in content:
        kind = part.get("type")
        if kind == "text":
            parts.append({"type": "text", "text": part["text"]})
        elif kind == "image":
            url = f"data:{part['media_type']};base64,{part['data']}"
            parts.append({"type": "image_url", "image_url": {"url": url}})
        else:
            raise InputError(f"cannot send a message part of type {kind!r} to an OpenAI model")
    return parts


def without_key(schema: Any, key: str) -> Any:
    """A copy of a JSON schema with the keyword `key` left out at every level."""
    if isinstance(schema, dict):
        kept = {name: without_key(value, key) for name, value in schema.items() if name != key}
        if isinstance(schema.get("properties"), dict):  # property names are not keywords
            kept["properties"] = {name: without_key(value, key)
                                  for name, value in schema["properties"].items()}
        return kept
    if isinstance(schema, list):
        return [without_key(item, key) for item in schema]
    return schema


def is_strict_schema(schema: object) -> bool:
    """Whether OpenAI's strict mode takes `schema`: every object closed (additionalProperties
    false) with all its properties required, and every array saying what its items are."""
    if isinstance(schema, list):
        return all(is_strict_schema(item) for item in schema)
    if not isinstance(schema, dict):
        return True
    if not ({"type", "anyOf", "enum"} & set(schema)):
        return False  # "any value" is not a thing strict mode can say
    types = schema.get("type")
    types = types if isinstance(types, list) else [types]
    if "object" in types:
        properties = schema.get("properties") or {}
        if schema.get("additionalProperties") is not False or set(schema.get("required") or ()) != set(properties):
            return False
    if "array" in types and not isinstance(schema.get("items"), dict):
        return False
    if any(key not in ("type", "properties", "required", "additionalProperties", "items", "enum",
                       "description", "title", "anyOf", "maxItems", "minItems")
           for key in schema):
        return False
    children = [*(schema.get("properties") or {}).values(), schema.get("items"), *(schema.get("anyOf") or ())]
    return all(is_strict_schema(child) for child in children if child is not None)


def _refuses_stop(model_id: str) -> bool:
    """OpenAI's reasoning models reject `stop` outright; callers that need to stop watch
    the stream themselves (Request.stop says they must), so it is just left out."""
    return re.match(r"(o\d|gpt-5)", model_id) is not None


def reasoning_effort(value: str | None) -> str | None:
    """`-z` as reasoning_effort: an effort name as is, a token budget to the nearest effort."""
    if value is None:
        return None
    word = value.strip().lower()
    if word in EFFORTS:
        return word
    if word in ("0", "off"):
        return None
    try:
        budget = int(word)
    except ValueError:
        raise UsageError(
            f"thinking must be a token budget or one of {', '.join(EFFORTS)}, not {value!r}"
        ) from None
    for ceiling, effort in EFFORT_FOR_BUDGET:
        if budget <= ceiling:
            return effort
    return "high"


# --- errors particular to this API ----------------------------------------


def _error_kind(body: object) -> set[str]:
    if not isinstance(body, Mapping):
        return set()
    return {str(body[key]) for key in ("type", "code") if body.get(key) is not None}


def _status_error(
    status: int, message: str, headers: Mapping[str, str], *, kind: set[str]
) -> ProviderError:
    if status == 429 and "insufficient_quota" in kind:
        # Out of credit: waiting a few seconds will not help.
        return ProviderError(f"quota exceeded ({status})" + (f": {message}" if message else ""))
    text = status_text(status, message)
    if is_retryable_status(status):
        return ProviderBusy(text, retry_after=retry_after_seconds(headers))
    return ProviderError(text)


def _server_message(body: object, secret: str | None) -> str:
    # OpenAI and llama.cpp send {"message": ...}; Ollama sends the message as a bare string.
    if isinstance(body, Mapping) and isinstance(body.get("message"), str):
        return one_line(body["message"], secret)
    # A bare text body is the message (a proxy's HTML error page is not worth showing).
    if isinstance(body, str) and not body.lstrip().startswith("<"):
        return one_line(body, secret)
    return ""
