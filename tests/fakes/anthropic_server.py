"""A loopback Anthropic Messages API: `POST /v1/messages`, streamed as server-sent events.

Every event carries an `event:` line as well as `data:`: the anthropic SDK skips events
without one. The SDK's base_url is the server root (it adds `/v1/messages` itself).

Prompt caching is reported the way the API reports it, from the `cache_control` markers
a request carries (`PromptCache`): the prefix up to a marker seen before (within 20
blocks back of a marker) is a cache read, newly marked prefixes are cache writes, and
`input_tokens` is only the rest. Prefixes under `min_cache_tokens` are not cached, as
the API ignores them. Tokens are counted as the fake counts them (about four characters
each). A request that caches nothing reports the scripted `Reply.input_tokens`, unless
`count_tokens` is set: then every request reports its counted size.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import threading
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

_message_ids = itertools.count(1)


def _event(name: str, payload: dict[str, Any]) -> str:
    return f"event: {name}\ndata: {json.dumps(payload)}\n\n"


def _error_body(error_type: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": error_type, "message": message},
            "request_id": "req_fake"}


def _forced_tool(body: dict[str, Any]) -> tuple[str | None, str | None]:
    """(the tool the request forces, or None; a refusal as the real API words it, or None)."""
    tools = body.get("tools") or []
    for tool in tools:
        schema = tool.get("input_schema")
        if not isinstance(schema, dict) or schema.get("type") != "object":
            return None, f"tools.{tools.index(tool)}.input_schema.type: Input should be 'object'"
    choice = body.get("tool_choice") or {}
    if choice.get("type") != "tool":
        return None, None
    if body.get("thinking"):
        return None, "Thinking may not be enabled when tool_choice forces tool use."
    if choice.get("name") not in {tool.get("name") for tool in tools}:
        return None, f"tool_choice.name: no tool named {choice.get('name')!r}"
    return choice["name"], None


MIN_CACHE_TOKENS = 1024  # the API's minimum cacheable prefix for Sonnet and Opus models
LOOKBACK_BLOCKS = 20  # how far back from a breakpoint the API looks for an earlier hit


def count_tokens(text: str) -> int:
    return max(1, len(text) // 4)


def _prompt_blocks(body: dict) -> list[tuple[str, int, bool]]:
    """(key, tokens, marked) for each block of the prompt in cache order: tools, system, messages."""
    flat: list[tuple[str, dict]] = [("tool", tool) for tool in body.get("tools") or []]
    system = body.get("system")
    if isinstance(system, str) and system:
        system = [{"type": "text", "text": system}]
    flat += [("system", block) for block in system or []]
    for message in body.get("messages") or []:
        content = message.get("content")
        if isinstance(content, str):
            content = [{"type": "text", "text": content}]
        flat += [(message.get("role", "user"), block) for block in content or []]
    blocks = []
    for role, block in flat:
        bare = {key: value for key, value in block.items() if key != "cache_control"}
        key = json.dumps([role, bare], sort_keys=True)
        blocks.append((key, count_tokens(bare.get("text") or key), "cache_control" in block))
    return blocks


def _cut_at_stop(text: str, stops: Any) -> tuple[str, str | None]:
    """As the API does: the text up to the first stop sequence, which is left out."""
    found = [(text.find(stop), stop) for stop in stops or () if isinstance(stop, str) and stop in text]
    if not found:
        return text, None
    position, stop = min(found)
    return text[:position], stop


class PromptCache:
    """Prefixes written by earlier requests, by the hash of everything up to a block."""

    def __init__(self, min_tokens: int = MIN_CACHE_TOKENS) -> None:
        self.min_tokens = min_tokens
        self._written: set[str] = set()
        self._lock = threading.Lock()

    def usage(self, body: dict) -> tuple[int, int, int] | None:
        """(uncached input, cache read, cache write) tokens, or None for no markers."""
        blocks = _prompt_blocks(body)
        marks = [index for index, (_, _, marked) in enumerate(blocks) if marked]
        if not marks:
            return None
        hashes, totals, running, digest = [], [], 0, hashlib.sha256()
        for key, tokens, _ in blocks:
            digest.update(key.encode())
            hashes.append(digest.hexdigest())
            running += tokens
            totals.append(running)
        with self._lock:
            read_end = 0
            for mark in marks:
                for index in range(mark, max(-1, mark - LOOKBACK_BLOCKS), -1):
                    if hashes[index] in self._written:
                        read_end = max(read_end, index + 1)
                        break
            write_end = read_end
            for mark in marks:
                if mark + 1 > read_end and totals[mark] >= self.min_tokens:
                    self._written.add(hashes[mark])
                    write_end = max(write_end, mark + 1)
        read = totals[read_end - 1] if read_end else 0
        written = totals[write_end - 1] - read if write_end > read_end else 0
        return running - read - written, read, written


class AnthropicFakeServer(LoopbackServer):
    api_prefix = ""
    endpoint = "/v1/messages"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.prompt_cache = PromptCache()
        self.count_tokens = False

    def _usage(self, body: Any, scripted_input: int) -> dict[str, int]:
        body = body if isinstance(body, dict) else {}
        counted = self.prompt_cache.usage(body)
        if counted is None or counted[1] + counted[2] == 0:
            whole = sum(tokens for _, tokens, _ in _prompt_blocks(body))
            uncached = whole if self.count_tokens else scripted_input
            return {"input_tokens": uncached, "cache_creation_input_tokens": 0,
                    "cache_read_input_tokens": 0}
        uncached, read, written = counted
        return {"input_tokens": uncached, "cache_creation_input_tokens": written,
                "cache_read_input_tokens": read}

    def respond(self, request: RecordedRequest, behaviour: Any, exchange: Exchange) -> None:
        headers = request.headers
        has_bearer = headers.get("authorization", "").startswith("Bearer ")
        if "x-api-key" not in headers and not has_bearer:
            # As the real API does: a request with no credentials at all never gets further.
            exchange.send_json(401, _error_body("authentication_error",
                                                "x-api-key header is required"))
            return
        body = request.body if isinstance(request.body, dict) else {}
        model = body.get("model", "claude-fake")
        if isinstance(behaviour, Reply):
            forced_tool, refusal = _forced_tool(body)
            if refusal:
                exchange.send_json(400, _error_body("invalid_request_error", refusal))
                return
            exchange.start_stream()
            self._message_start(exchange, model, behaviour.input_tokens,
                                usage=self._usage(request.body, behaviour.input_tokens))
            index = 0
            if behaviour.thinking:
                self._block(exchange, index, "thinking", behaviour.thinking, behaviour.chunks)
                index += 1
            if forced_tool:
                # The reply's text is the tool's input, streamed as the API streams JSON.
                self._tool_block(exchange, index, forced_tool, behaviour.text, behaviour.chunks)
                stop_sequence = None
            else:
                text, stop_sequence = _cut_at_stop(behaviour.text, (request.body or {}).get("stop_sequences"))
                self._block(exchange, index, "text", text, behaviour.chunks)
            stop_reason = behaviour.stop_reason or (
                "tool_use" if forced_tool else "stop_sequence" if stop_sequence else "end_turn")
            exchange.send(_event("message_delta", {
                "type": "message_delta",
                "delta": {"stop_reason": stop_reason,
                          "stop_sequence": stop_sequence},
                "usage": {"output_tokens": behaviour.output_tokens},
            }))
            exchange.send(_event("message_stop", {"type": "message_stop"}))
            exchange.end_stream()
        elif isinstance(behaviour, HttpError):
            exchange.send_json(behaviour.status,
                               _error_body(behaviour.error_type, behaviour.message),
                               headers=behaviour.headers)
        elif isinstance(behaviour, CutMidStream):
            exchange.start_stream()
            self._message_start(exchange, model, 11)
            self._open_text_block(exchange, 0)
            for piece in split_text(behaviour.text_before_cut, behaviour.chunks):
                exchange.send(self._text_delta(0, piece))
            if behaviour.hold:
                exchange.hold()
            else:
                exchange.cut(reset=behaviour.reset)
        elif isinstance(behaviour, ErrorMidStream):
            exchange.start_stream()
            self._message_start(exchange, model, 11)
            if behaviour.text_before_error:
                self._open_text_block(exchange, 0)
                exchange.send(self._text_delta(0, behaviour.text_before_error))
            exchange.send(_event("error", _error_body(behaviour.error_type, behaviour.message)))
            exchange.end_stream()
        elif isinstance(behaviour, SlowFirstByte):
            exchange.hold()
        else:
            raise TypeError(f"unknown behaviour {behaviour!r}")

    def not_found(self, request: RecordedRequest, exchange: Exchange) -> None:
        exchange.send_json(404, _error_body("not_found_error", f"Not found: {request.path}"))

    # --- pieces of a stream ---

    @staticmethod
    def _message_start(exchange: Exchange, model: str, input_tokens: int,
                       usage: dict[str, int] | None = None) -> None:
        usage = usage or {"input_tokens": input_tokens, "cache_creation_input_tokens": 0,
                          "cache_read_input_tokens": 0}
        exchange.send(_event("message_start", {
            "type": "message_start",
            "message": {
                "id": f"msg_fake{next(_message_ids)}", "type": "message", "role": "assistant",
                "model": model, "content": [], "stop_reason": None, "stop_sequence": None,
                "usage": {**usage, "output_tokens": 1},
            },
        }))
        exchange.send(_event("ping", {"type": "ping"}))

    @staticmethod
    def _open_text_block(exchange: Exchange, index: int) -> None:
        exchange.send(_event("content_block_start", {
            "type": "content_block_start", "index": index,
            "content_block": {"type": "text", "text": ""},
        }))

    @staticmethod
    def _text_delta(index: int, text: str) -> str:
        return _event("content_block_delta", {
            "type": "content_block_delta", "index": index,
            "delta": {"type": "text_delta", "text": text},
        })

    def _tool_block(self, exchange: Exchange, index: int, name: str, text: str, chunks: int) -> None:
        exchange.send(_event("content_block_start", {
            "type": "content_block_start", "index": index,
            "content_block": {"type": "tool_use", "id": f"toolu_fake{index}", "name": name, "input": {}},
        }))
        for piece in split_text(text, chunks):
            exchange.send(_event("content_block_delta", {
                "type": "content_block_delta", "index": index,
                "delta": {"type": "input_json_delta", "partial_json": piece},
            }))
        exchange.send(_event("content_block_stop", {"type": "content_block_stop", "index": index}))

    def _block(self, exchange: Exchange, index: int, kind: str, text: str, chunks: int) -> None:
        if kind == "thinking":
            exchange.send(_event("content_block_start", {
                "type": "content_block_start", "index": index,
                "content_block": {"type": "thinking", "thinking": "", "signature": ""},
            }))
            for piece in split_text(text, chunks):
                exchange.send(_event("content_block_delta", {
                    "type": "content_block_delta", "index": index,
                    "delta": {"type": "thinking_delta", "thinking": piece},
                }))
            exchange.send(_event("content_block_delta", {
                "type": "content_block_delta", "index": index,
                "delta": {"type": "signature_delta", "signature": "ZmFrZSBzaWduYXR1cmU="},
            }))
        else:
            self._open_text_block(exchange, index)
            for piece in split_text(text, chunks):
                exchange.send(self._text_delta(index, piece))
        exchange.send(_event("content_block_stop", {"type": "content_block_stop", "index": index}))
