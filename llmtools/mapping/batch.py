"""--batch: the map step through the provider's batch API, resumable.

Anthropic Message Batches and OpenAI's Batch API (an uploaded JSONL file of requests)
take many requests at once, run them within a day at half the price, and keep the
results. `llm-map --batch` submits one request per chunk, prints the batch id on stderr,
keeps what it needs to finish in `$XDG_DATA_HOME/llmtools/batches/ID.json`, polls (with
progress) until the batch has ended, then combines the answers with ordinary calls.
`llm-map --resume ID` picks a batch up where an interrupted run left it: nothing is
submitted twice.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from llmtools.errors import InputError, ProviderError, UsageError
from llmtools.mapping.calls import CallResult
from llmtools.providers.base import ModelSpec, Request

DEFAULT_POLL_INTERVAL = 30.0
BATCH_PROVIDERS = ("anthropic", "openai")


def batches_dir() -> Path:
    from llmtools.statedirs import ensure_private_dir, paths

    return ensure_private_dir(paths().data_dir / "batches")


@dataclasses.dataclass
class BatchState:
    """What a run needs to finish a batch it (or an earlier run) submitted."""

    id: str
    model: str
    instruction: str
    chunks: list[dict]  # {"index", "text", "source", "message_index", "part"}
    system: str | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    submitted: float = 0.0

    @property
    def path(self) -> Path:
        return batches_dir() / f"{_safe(self.id)}.json"

    def save(self) -> None:
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps(dataclasses.asdict(self), ensure_ascii=False), encoding="utf-8")
        temporary.replace(self.path)

    @classmethod
    def load(cls, batch_id: str) -> BatchState:
        path = batches_dir() / f"{_safe(batch_id)}.json"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise UsageError(f"--resume {batch_id}: no such batch in {path.parent}") from None
        except ValueError as error:
            raise InputError(f"{path}: {error}") from None
        problem = _state_problem(data)
        if problem:
            raise InputError(f"{path}: not a batch's state: {problem}")
        return cls(**data)


_STATE_FIELDS = {field.name: field for field in dataclasses.fields(BatchState)}
_CHUNK_KEYS = ("index", "text", "source", "message_index", "part")


def _state_problem(data: object) -> str | None:
    """What makes `data` unusable as a BatchState's fields, or None."""
    if not isinstance(data, dict):
        return f"a JSON {type(data).__name__}, not an object"
    missing = [name for name, field in _STATE_FIELDS.items()
               if name not in data and field.default is dataclasses.MISSING]
    if missing:
        return f"no {', '.join(missing)}"
    unknown = sorted(set(data) - set(_STATE_FIELDS))
    if unknown:
        return f"unknown {', '.join(unknown)}"
    not_text = [name for name in ("id", "model", "instruction") if not isinstance(data[name], str)]
    if not_text:
        return f"{', '.join(not_text)} must be text"
    chunks = data["chunks"]
    if not isinstance(chunks, list) or not all(isinstance(c, dict) and all(k in c for k in _CHUNK_KEYS)
                                               for c in chunks):
        return f"chunks must be a list of objects with {', '.join(_CHUNK_KEYS)}"
    return None


def _safe(batch_id: str) -> str:
    if not batch_id or "/" in batch_id or batch_id.startswith("."):
        raise UsageError(f"not a batch id: {batch_id!r}")
    return batch_id


def custom_id(position: int) -> str:
    return f"chunk-{position}"


@dataclasses.dataclass
class Progress:
    ended: bool
    done: int
    failed: int
    total: int


class Batches:
    """One provider's batch API through its SDK client."""

    def submit(self, requests: list[tuple[str, dict]]) -> str:
        raise NotImplementedError

    def progress(self, batch_id: str) -> Progress:
        raise NotImplementedError

    def results(self, batch_id: str) -> dict[str, CallResult]:
        raise NotImplementedError

    def __init__(self, provider: Any) -> None:
        self.provider = provider
        self.client = provider._get_client()

    def params(self, messages: list[dict], max_tokens: int | None, temperature: float | None) -> dict:
        params = self.provider.request_params(Request(messages=messages, max_tokens=max_tokens,
                                                      temperature=temperature))
        params.pop("stream_options", None)
        extra = params.pop("extra_body", None) or {}
        return {**params, **extra}


class AnthropicBatches(Batches):
    def submit(self, requests: list[tuple[str, dict]]) -> str:
        batch = self.client.messages.batches.create(
            requests=[{"custom_id": name, "params": params} for name, params in requests])
        return str(batch.id)

    def progress(self, batch_id: str) -> Progress:
        batch = self.client.messages.batches.retrieve(batch_id)
        counts = batch.request_counts
        failed = counts.errored + counts.canceled + counts.expired
        total = counts.processing + counts.succeeded + failed
        return Progress(batch.processing_status == "ended", counts.succeeded + failed, failed, total)

    def results(self, batch_id: str) -> dict[str, CallResult]:
        found = {}
        for item in self.client.messages.batches.results(batch_id):
            result = item.result
            if result.type == "succeeded":
                text = "".join(block.text for block in result.message.content if block.type == "text")
                found[item.custom_id] = CallResult(text=text, attempts=1)
            else:
                detail = getattr(getattr(result, "error", None), "error", None)
                message = getattr(detail, "message", None) or result.type
                found[item.custom_id] = CallResult(error=ProviderError(f"batch request {result.type}: {message}"),
                                                   attempts=1)
        return found


class OpenAIBatches(Batches):
    ENDPOINT = "/v1/chat/completions"

    def submit(self, requests: list[tuple[str, dict]]) -> str:
        lines = "".join(json.dumps({"custom_id": name, "method": "POST", "url": self.ENDPOINT, "body": params})
                        + "\n" for name, params in requests)
        uploaded = self.client.files.create(file=("llm-map-batch.jsonl", lines.encode()), purpose="batch")
        batch = self.client.batches.create(input_file_id=uploaded.id, endpoint=self.ENDPOINT,
                                           completion_window="24h")
        return str(batch.id)

    def progress(self, batch_id: str) -> Progress:
        batch = self.client.batches.retrieve(batch_id)
        counts = batch.request_counts
        done, failed, total = (counts.completed, counts.failed, counts.total) if counts else (0, 0, 0)
        if batch.status in ("failed", "cancelled"):
            reason = "; ".join(error.message or "" for error in (batch.errors.data if batch.errors else []) or [])
            raise ProviderError(f"batch {batch_id} {batch.status}" + (f": {reason}" if reason else ""))
        return Progress(batch.status in ("completed", "expired"), done + failed, failed, total)

    def results(self, batch_id: str) -> dict[str, CallResult]:
        batch = self.client.batches.retrieve(batch_id)
        found: dict[str, CallResult] = {}
        for file_id in (batch.output_file_id, batch.error_file_id):
            if not file_id:
                continue
            for line in self.client.files.content(file_id).text.splitlines():
                if line.strip():
                    item = json.loads(line)
                    found[item["custom_id"]] = _openai_result(item)
        return found


def _openai_result(item: dict) -> CallResult:
    response = item.get("response") or {}
    if response.get("status_code") == 200:
        choices = (response.get("body") or {}).get("choices") or [{}]
        return CallResult(text=(choices[0].get("message") or {}).get("content") or "", attempts=1)
    error = item.get("error") or (response.get("body") or {}).get("error") or {}
    return CallResult(error=ProviderError(f"batch request failed: {error.get('message') or error}"), attempts=1)


def batches_for(spec: ModelSpec) -> Batches:
    if spec.provider not in BATCH_PROVIDERS:
        raise UsageError(f"--batch needs an Anthropic or OpenAI model (model {spec.name} is {spec.provider})")
    from llmtools.providers import load_provider

    provider = load_provider(spec)
    return AnthropicBatches(provider) if spec.provider == "anthropic" else OpenAIBatches(provider)


def wait_for(batches: Batches, batch_id: str, *, interval: float,
             on_progress: Callable[[Progress], None] | None = None,
             sleep: Callable[[float], None] = time.sleep) -> dict[str, CallResult]:
    """Poll until the batch has ended; its results by custom id."""
    while True:
        progress = batches.progress(batch_id)
        if on_progress is not None:
            on_progress(progress)
        if progress.ended:
            return batches.results(batch_id)
        sleep(interval)
