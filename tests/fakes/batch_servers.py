"""Loopback batch APIs, on top of the chat fakes (which still answer the reduce calls):

- Anthropic Message Batches: POST /v1/messages/batches, GET /v1/messages/batches/{id},
  GET {results_url} (JSON Lines of `{"custom_id", "result": {"type": "succeeded", "message"}}`).
- OpenAI Files + Batch: POST /v1/files (multipart, purpose=batch), POST /v1/batches,
  GET /v1/batches/{id}, GET /v1/files/{id}/content (JSON Lines of `{"custom_id", "response"}`).

A batch stays in progress until the test calls `end_batches()`, so a test can interrupt a
client mid-poll and resume it. Each request is answered with `answer(params)`: by default
"seen " and the first FACT-n in what it was sent, so a test can tell which answer is whose.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
from typing import Any

from tests.fakes.anthropic_server import AnthropicFakeServer
from tests.fakes.loopback import Exchange, RecordedRequest
from tests.fakes.openai_server import OpenAIFakeServer

_ids = itertools.count(1)
CREATED = "2026-11-29T10:00:00Z"


def default_answer(params: dict) -> str:
    found = re.search(r"FACT-\d+", json.dumps(params))
    return "seen " + (found.group(0) if found else "nothing")


class _BatchBook:
    """Batches received, and whether they have ended; shared by both fakes' shapes."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.batches: dict[str, dict] = {}  # id -> {"requests": [(custom_id, params)], "ended": bool}
        self.polls = threading.Condition(self.lock)
        self.poll_count = 0
        self.answer = default_answer
        self.fail_ids: set[str] = set()  # custom ids answered with an error

    def add(self, prefix: str, requests: list[tuple[str, dict]]) -> str:
        batch_id = f"{prefix}{next(_ids)}"
        with self.lock:
            self.batches[batch_id] = {"requests": requests, "ended": False}
        return batch_id

    def polled(self) -> None:
        with self.lock:
            self.poll_count += 1
            self.polls.notify_all()

    def wait_for_polls(self, count: int, timeout: float = 30) -> None:
        with self.lock:
            if not self.polls.wait_for(lambda: self.poll_count >= count, timeout):
                raise AssertionError(f"expected {count} polls, saw {self.poll_count}")

    def end_all(self) -> None:
        with self.lock:
            for batch in self.batches.values():
                batch["ended"] = True


class AnthropicBatchServer(AnthropicFakeServer):
    def __init__(self) -> None:
        super().__init__()
        self.book = _BatchBook()

    def end_batches(self) -> None:
        self.book.end_all()

    def _batch_json(self, batch_id: str) -> dict:
        batch = self.book.batches[batch_id]
        count = len(batch["requests"])
        failed = sum(1 for name, _ in batch["requests"] if name in self.book.fail_ids) if batch["ended"] else 0
        return {"id": batch_id, "type": "message_batch", "created_at": CREATED, "expires_at": CREATED,
                "processing_status": "ended" if batch["ended"] else "in_progress",
                "ended_at": CREATED if batch["ended"] else None, "archived_at": None, "cancel_initiated_at": None,
                "request_counts": {"processing": 0 if batch["ended"] else count,
                                   "succeeded": count - failed if batch["ended"] else 0,
                                   "errored": failed, "canceled": 0, "expired": 0},
                "results_url": f"{self.base_url}/v1/messages/batches/{batch_id}/results" if batch["ended"] else None}

    def _result_line(self, name: str, params: dict) -> str:
        if name in self.book.fail_ids:
            result: dict[str, Any] = {"type": "errored", "error": {"type": "error", "error": {
                "type": "invalid_request_error", "message": "scripted failure"}}}
        else:
            result = {"type": "succeeded", "message": {
                "id": f"msg_{name}", "type": "message", "role": "assistant", "model": params.get("model", "m"),
                "content": [{"type": "text", "text": self.book.answer(params)}], "stop_reason": "end_turn",
                "stop_sequence": None, "usage": {"input_tokens": 10, "output_tokens": 3}}}
        return json.dumps({"custom_id": name, "result": result}) + "\n"

    def not_found(self, request: RecordedRequest, exchange: Exchange) -> None:
        path = request.path.split("?")[0]
        match = re.fullmatch(r"/v1/messages/batches(?:/([^/]+))?(/results)?", path)
        if match is None:
            return super().not_found(request, exchange)
        batch_id, results = match.groups()
        if request.method == "POST" and batch_id is None:
            requests = [(item["custom_id"], item["params"]) for item in request.body["requests"]]
            return exchange.send_json(200, self._batch_json(self.book.add("msgbatch_", requests)))
        if batch_id not in self.book.batches:
            return exchange.send_json(404, {"type": "error", "error": {"type": "not_found_error",
                                                                       "message": "no such batch"}})
        if results:
            body = "".join(self._result_line(name, params) for name, params in self.book.batches[batch_id]["requests"])
            return _send_text(exchange, body)
        self.book.polled()
        return exchange.send_json(200, self._batch_json(batch_id))


class OpenAIBatchServer(OpenAIFakeServer):
    def __init__(self) -> None:
        super().__init__()
        self.book = _BatchBook()
        self.files: dict[str, str] = {}

    def end_batches(self) -> None:
        self.book.end_all()

    def _file(self, text: str) -> str:
        file_id = f"file-{next(_ids)}"
        self.files[file_id] = text
        return file_id

    def _batch_json(self, batch_id: str) -> dict:
        batch = self.book.batches[batch_id]
        count, ended = len(batch["requests"]), batch["ended"]
        failed = sum(1 for name, _ in batch["requests"] if name in self.book.fail_ids) if ended else 0
        if ended and "output" not in batch:
            lines = [self._output_line(name, params) for name, params in batch["requests"]]
            batch["output"] = self._file("".join(line for line, ok in lines if ok))
            batch["errors"] = self._file("".join(line for line, ok in lines if not ok)) if failed else None
        return {"id": batch_id, "object": "batch", "endpoint": "/v1/chat/completions", "errors": None,
                "input_file_id": batch["input"], "completion_window": "24h",
                "status": "completed" if ended else "in_progress", "created_at": 1_790_000_000,
                "output_file_id": batch.get("output"), "error_file_id": batch.get("errors"),
                "request_counts": {"total": count, "completed": count - failed if ended else 0, "failed": failed}}

    def _output_line(self, name: str, body: dict) -> tuple[str, bool]:
        if name in self.book.fail_ids:
            return json.dumps({"id": f"req-{name}", "custom_id": name, "response": None,
                               "error": {"code": "server_error", "message": "scripted failure"}}) + "\n", False
        completion = {"id": f"chatcmpl-{name}", "object": "chat.completion", "created": 1_790_000_000,
                      "model": body.get("model", "m"), "choices": [{"index": 0, "finish_reason": "stop",
                      "message": {"role": "assistant", "content": self.book.answer(body)}}],
                      "usage": {"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13}}
        return json.dumps({"id": f"req-{name}", "custom_id": name, "error": None,
                           "response": {"status_code": 200, "request_id": name, "body": completion}}) + "\n", True

    def not_found(self, request: RecordedRequest, exchange: Exchange) -> None:
        path = request.path.split("?")[0]
        if request.method == "POST" and path == "/v1/files":
            # multipart/form-data: the JSON Lines file is the part holding "custom_id" lines.
            lines = [line for line in str(request.body).splitlines() if line.startswith('{"custom_id"')]
            file_id = self._file("\n".join(lines) + "\n")
            return exchange.send_json(200, {"id": file_id, "object": "file", "bytes": len(request.body),
                                            "created_at": 1_790_000_000, "filename": "batch.jsonl",
                                            "purpose": "batch", "status": "processed"})
        if request.method == "POST" and path == "/v1/batches":
            lines = [json.loads(line) for line in self.files[request.body["input_file_id"]].splitlines() if line]
            batch_id = self.book.add("batch_", [(item["custom_id"], item["body"]) for item in lines])
            self.book.batches[batch_id]["input"] = request.body["input_file_id"]
            return exchange.send_json(200, self._batch_json(batch_id))
        match = re.fullmatch(r"/v1/batches/([^/]+)", path)
        if match and match.group(1) in self.book.batches:
            self.book.polled()
            return exchange.send_json(200, self._batch_json(match.group(1)))
        match = re.fullmatch(r"/v1/files/([^/]+)/content", path)
        if match and match.group(1) in self.files:
            return _send_text(exchange, self.files[match.group(1)])
        return super().not_found(request, exchange)


def _send_text(exchange: Exchange, text: str) -> None:
    handler = exchange._handler
    data = text.encode()
    handler.send_response(200)
    handler.send_header("Content-Type", "application/binary")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)
    handler.wfile.flush()
