"""A loopback Anthropic Messages API: `POST /v1/messages`, streamed as server-sent events.

Every event carries an `event:` line as well as `data:`: the anthropic SDK skips events
without one. The SDK's base_url is the server root (it adds `/v1/messages` itself).
"""

from __future__ import annotations

import itertools
import json
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


class AnthropicFakeServer(LoopbackServer):
    api_prefix = ""
    endpoint = "/v1/messages"

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
            self._message_start(exchange, model, behaviour.input_tokens)
            index = 0
            if behaviour.thinking:
                self._block(exchange, index, "thinking", behaviour.thinking, behaviour.chunks)
                index += 1
            if forced_tool:
                # The reply's text is the tool's input, streamed as the API streams JSON.
                self._tool_block(exchange, index, forced_tool, behaviour.text, behaviour.chunks)
            else:
                self._block(exchange, index, "text", behaviour.text, behaviour.chunks)
            stop_reason = behaviour.stop_reason or ("tool_use" if forced_tool else "end_turn")
            exchange.send(_event("message_delta", {
                "type": "message_delta",
                "delta": {"stop_reason": stop_reason,
                          "stop_sequence": None},
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
    def _message_start(exchange: Exchange, model: str, input_tokens: int) -> None:
        exchange.send(_event("message_start", {
            "type": "message_start",
            "message": {
                "id": f"msg_fake{next(_message_ids)}", "type": "message", "role": "assistant",
                "model": model, "content": [], "stop_reason": None, "stop_sequence": None,
                "usage": {"input_tokens": input_tokens, "output_tokens": 1,
                          "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0},
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
