"""A loopback OpenAI chat completions API: `POST /v1/chat/completions`, streamed.

Chunks are `data: {json}` lines ending with `data: [DONE]`; the final usage chunk (empty
`choices`) is sent only when the request asked for it with `stream_options.include_usage`,
as the real API does. Thinking is streamed as `reasoning_content`, the way llama.cpp's
server and vLLM send it. The SDK's base_url includes `/v1`.

Prompt caching is automatic, as OpenAI's is: the longest prefix a request shares with an
earlier one (in messages as sent, about four characters a token) is reported as
`prompt_tokens_details.cached_tokens` once it reaches 1024 tokens, in steps of 128, never
more than the scripted prompt size.
"""

from __future__ import annotations

import itertools
import json
import os
import threading
import time
from typing import Any

from tests.fakes.loopback import (
    CutMidStream,
    ErrorMidStream,
    Exchange,
    HttpError,
    LoopbackServer,
    RecordedRequest,
    Reply,
    SlowFirstByte,
    split_text,
)

_completion_ids = itertools.count(1)


def _data(payload: Any) -> str:
    return f"data: {json.dumps(payload)}\n\n"


def _error_body(error_type: str, message: str, code: str | None) -> dict[str, Any]:
    return {"error": {"message": message, "type": error_type, "param": None, "code": code}}


def _response_format_refusal(response_format: Any) -> str | None:
    """What the real API says of a response_format it refuses (strict schemas are checked)."""
    if response_format is None:
        return None
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    if kind in ("text", "json_object"):
        return None
    if kind != "json_schema":
        return f"Invalid value: {kind!r}. Supported values are: 'json_object', 'json_schema', and 'text'."
    spec = response_format.get("json_schema") or {}
    if not spec.get("name") or not isinstance(spec.get("schema"), dict):
        return "Missing required parameter: 'response_format.json_schema.name' or '.schema'."
    if spec.get("strict"):
        return _strict_problem(spec["schema"], "")
    return None


def _strict_problem(schema: dict[str, Any], where: str) -> str | None:
    types = schema.get("type")
    types = types if isinstance(types, list) else [types]
    if "object" in types:
        properties = schema.get("properties") or {}
        if schema.get("additionalProperties") is not False:
            return (f"Invalid schema: In context=({where}), 'additionalProperties' is required to be "
                    f"supplied and to be false.")
        if set(schema.get("required") or ()) != set(properties):
            return (f"Invalid schema: In context=({where}), 'required' is required to be supplied and "
                    f"to be an array including every key in properties.")
        for name, child in properties.items():
            problem = _strict_problem(child, f"{where}, {name!r}".lstrip(", "))
            if problem:
                return problem
    if isinstance(schema.get("items"), dict):
        return _strict_problem(schema["items"], f"{where}, 'items'".lstrip(", "))
    return None


class _Chunks:
    """Builds the chunks of one completion, all sharing its id, created time and model."""

    def __init__(self, model: str) -> None:
        self.base = {"id": f"chatcmpl-fake{next(_completion_ids)}",
                     "object": "chat.completion.chunk", "created": int(time.time()),
                     "model": model, "system_fingerprint": "fp_fake"}

    def choice(self, delta: dict[str, Any], finish_reason: str | None = None) -> str:
        return _data({**self.base, "choices": [
            {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]})

    def usage(self, prompt_tokens: int, completion_tokens: int, cached_tokens: int = 0) -> str:
        usage: dict[str, Any] = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                                 "total_tokens": prompt_tokens + completion_tokens}
        if cached_tokens:
            usage["prompt_tokens_details"] = {"cached_tokens": cached_tokens, "audio_tokens": 0}
        return _data({**self.base, "choices": [], "usage": usage})


MIN_CACHED_TOKENS = 1024
CACHE_STEP_TOKENS = 128


class AutomaticCache:
    """The prompts seen so far, to find the longest prefix a new one shares with them."""

    def __init__(self) -> None:
        self._seen: list[str] = []
        self._lock = threading.Lock()

    def cached_tokens(self, body: dict) -> int:
        prompt = json.dumps(body.get("messages") or [], sort_keys=True)
        with self._lock:
            shared = max((len(os.path.commonprefix([prompt, seen])) for seen in self._seen), default=0)
            self._seen.append(prompt)
        tokens = shared // 4
        return tokens - tokens % CACHE_STEP_TOKENS if tokens >= MIN_CACHED_TOKENS else 0


class OpenAIFakeServer(LoopbackServer):
    api_prefix = "/v1"
    endpoint = "/v1/chat/completions"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.prompt_cache = AutomaticCache()

    def respond(self, request: RecordedRequest, behaviour: Any, exchange: Exchange) -> None:
        body = request.body if isinstance(request.body, dict) else {}
        chunks = _Chunks(body.get("model", "gpt-fake"))
        refusal = _response_format_refusal(body.get("response_format"))
        if isinstance(behaviour, Reply) and refusal:
            exchange.send_json(400, _error_body("invalid_request_error", refusal, None))
        elif isinstance(behaviour, Reply):
            exchange.start_stream()
            exchange.send(chunks.choice({"role": "assistant", "content": ""}))
            for piece in split_text(behaviour.thinking or "", behaviour.chunks):
                exchange.send(chunks.choice({"reasoning_content": piece}))
            for piece in split_text(behaviour.text, behaviour.chunks):
                exchange.send(chunks.choice({"content": piece}))
            exchange.send(chunks.choice({}, finish_reason=behaviour.stop_reason or "stop"))
            wants_usage = (body.get("stream_options") or {}).get("include_usage")
            if wants_usage and behaviour.include_usage:
                cached = min(self.prompt_cache.cached_tokens(body), behaviour.input_tokens)
                exchange.send(chunks.usage(behaviour.input_tokens, behaviour.output_tokens, cached))
            exchange.send("data: [DONE]\n\n")
            exchange.end_stream()
        elif isinstance(behaviour, HttpError):
            exchange.send_json(behaviour.status,
                               _error_body(behaviour.error_type, behaviour.message, behaviour.code),
                               headers=behaviour.headers)
        elif isinstance(behaviour, CutMidStream):
            exchange.start_stream()
            exchange.send(chunks.choice({"role": "assistant", "content": ""}))
            for piece in split_text(behaviour.text_before_cut, behaviour.chunks):
                exchange.send(chunks.choice({"content": piece}))
            if behaviour.hold:
                exchange.hold()
            else:
                exchange.cut(reset=behaviour.reset)
        elif isinstance(behaviour, ErrorMidStream):
            exchange.start_stream()
            if behaviour.text_before_error:
                exchange.send(chunks.choice({"role": "assistant",
                                             "content": behaviour.text_before_error}))
            exchange.send(_data(_error_body(behaviour.error_type, behaviour.message, None)))
            exchange.end_stream()
        elif isinstance(behaviour, SlowFirstByte):
            exchange.hold()
        else:
            raise TypeError(f"unknown behaviour {behaviour!r}")

    def not_found(self, request: RecordedRequest, exchange: Exchange) -> None:
        exchange.send_json(404, _error_body("invalid_request_error",
                                            f"Unknown request URL: {request.method} {request.path}",
                                            "unknown_url"))
