"""The one interface every model backend implements.

A provider is a small class with one streaming method, `stream(request)`, that yields
events. It declares what it can take (images, a thinking budget) as class attributes.
Providers raise the `ProviderError` family from `llmtools.errors`; retrying, timing,
cost and logging happen around them (`llmtools.providers.retry`, `llmtools.exchange`),
never inside, so every backend behaves the same to the user.

Importing this module is cheap: SDKs are imported inside each provider's module, and
provider modules are imported only when a model of theirs is used.
"""

from __future__ import annotations

import abc
import dataclasses
import re
from collections.abc import Iterator
from typing import ClassVar

from llmtools.stack import content_text

# --- events a provider yields -------------------------------------------------


@dataclasses.dataclass(frozen=True)
class TextDelta:
    text: str


@dataclasses.dataclass(frozen=True)
class ThinkingDelta:
    """Reasoning text; shown on stderr, never part of the answer."""

    text: str


@dataclasses.dataclass(frozen=True)
class Usage:
    """Token counts. May arrive more than once; a later non-None value replaces an earlier one.

    `input_tokens` is the whole prompt. Of it, `cache_read_tokens` came from the provider's
    prompt cache (billed at the cache-read price) and `cache_write_tokens` were stored in
    it (billed at the cache-write price); the rest is billed at the full input price.
    """

    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None


@dataclasses.dataclass(frozen=True)
class Finished:
    stop_reason: str | None = None


Event = TextDelta | ThinkingDelta | Usage | Finished


def event_to_json(event: Event) -> dict:
    """An event as it crosses a process boundary (the daemon socket, a model worker's pipe)."""
    if isinstance(event, TextDelta):
        return {"event": "text", "text": event.text}
    if isinstance(event, ThinkingDelta):
        return {"event": "thinking", "text": event.text}
    if isinstance(event, Usage):
        return {"event": "usage", "input_tokens": event.input_tokens,
                "output_tokens": event.output_tokens,
                "cache_read_tokens": event.cache_read_tokens,
                "cache_write_tokens": event.cache_write_tokens}
    if isinstance(event, Finished):
        return {"event": "finished", "stop_reason": event.stop_reason}
    raise TypeError(f"unknown provider event {event!r}")


def event_from_json(data: dict) -> Event | None:
    """The provider event `data` carries, or None for any other kind of message."""
    kind = data.get("event")
    if kind == "text":
        return TextDelta(data["text"])
    if kind == "thinking":
        return ThinkingDelta(data["text"])
    if kind == "usage":
        return Usage(data.get("input_tokens"), data.get("output_tokens"),
                     data.get("cache_read_tokens"), data.get("cache_write_tokens"))
    if kind == "finished":
        return Finished(data.get("stop_reason"))
    return None


# --- what a provider is asked -------------------------------------------------


# Defaults of what every model call has; `llmtools.config.setting` applies flag > env > config.
DEFAULT_MODEL_TIMEOUT = 120.0
DEFAULT_RETRIES = 3
DEFAULT_RETRY_BASE_DELAY = 1.0


@dataclasses.dataclass
class ModelSpec:
    """A model name resolved against config: everything needed to call it.

    `name` is what the user knows the model as (logged and shown); `model_id` is what the
    API is sent. Prices are US dollars per million tokens; a prompt-cache price left None
    is the input price. `api_key` is never logged or shown; `api_key_env` names the
    variable to set when it is missing.
    """

    name: str
    provider: str
    model_id: str
    base_url: str | None = None
    api_key: str | None = None
    api_key_env: str | None = None
    context_size: int | None = None
    price_input: float | None = None
    price_output: float | None = None
    price_cache_read: float | None = None
    price_cache_write: float | None = None
    timeout: float = DEFAULT_MODEL_TIMEOUT
    max_retries: int = DEFAULT_RETRIES
    retry_base_delay: float = DEFAULT_RETRY_BASE_DELAY
    options: dict = dataclasses.field(default_factory=dict)
    config_table: str | None = None  # "models.NAME" when config.toml defines the model

    def key_hint(self, default_env: str) -> str:
        """What to do about a missing or refused key, naming where it is configured."""
        if self.config_table and self.base_url:
            if self.api_key_env:
                return f"set {self.api_key_env} (named by api_key_env in [{self.config_table}] of config.toml)"
            return (f'this server wants an API key: add api_key_env = "VARIABLE" (or api_key) '
                    f"to [{self.config_table}] in config.toml")
        return f"set {self.api_key_env or default_env}"

    def __repr__(self) -> str:  # keep keys out of tracebacks and debug output
        return f"ModelSpec(name={self.name!r}, provider={self.provider!r}, model_id={self.model_id!r})"


@dataclasses.dataclass
class Request:
    """A call to make: the whole message stack (system messages included) and options.

    `thinking` is the raw `-z` value: a token budget ("2048") or an effort ("low",
    "medium", "high"); each provider maps it to what its API takes.

    `cache`: reuse the provider's prompt cache for the stable prefix of the stack (Anthropic
    `cache_control` breakpoints; a local model's KV cache). The caller decides it from the
    `prompt_cache` setting, so the daemon never consults its own config.

    `stop`: strings that end the answer where they first appear (llm-exec stops at
    `</helpers>`). Providers that support them send them to the API, which leaves the
    stop string out of the text; the rest ignore them, so a caller that depends on
    stopping also watches the streamed text itself.

    `schema`: a JSON schema (a top-level object) the answer must be an instance of. A
    provider whose registry entry says `supports_schema` constrains its output to it (Anthropic: a forced
    tool whose input schema it is; OpenAI: `response_format`; local models: a llama.cpp
    grammar) and streams the JSON as the answer's text; the rest ignore it. Callers still
    check the JSON they get (`llmtools.schemas.validate`): no provider's promise is
    trusted. `schema["title"]` names it where an API wants a name.
    """

    messages: list[dict]
    max_tokens: int | None = None
    temperature: float | None = None
    thinking: str | None = None
    stop: list[str] | None = None
    schema: dict | None = None
    cache: bool = True


def schema_name(schema: dict) -> str:
    """The name an API wants for a schema (a tool's, a response format's): its title, made safe."""
    name = re.sub(r"[^A-Za-z0-9_-]+", "_", str(schema.get("title") or "answer")).strip("_")
    return name[:64] or "answer"


class Provider(abc.ABC):
    name: ClassVar[str]
    # What it can take (images, a thinking budget, a schema) is in its registry entry
    # (`llmtools.providers.PROVIDERS`), read without importing this module.
    # ModelSpec fields that do not change what a warm instance holds: the daemon lets
    # requests that differ only in these share one instance (one copy of a model's weights).
    warm_key_ignores: ClassVar[tuple[str, ...]] = ()

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec

    @abc.abstractmethod
    def stream(self, request: Request) -> Iterator[Event]:
        """Send the request and yield events as they arrive."""

    @property
    def worker_pid(self) -> int | None:
        """The process holding the model when it runs in one of its own (local models), shown
        by `llm daemon status`; None for a provider that runs in the caller's process."""
        return None

    def close(self) -> None:  # noqa: B027  (an optional hook: most providers hold nothing)
        """Release connections; the daemon calls this when it drops a warm provider."""


# --- turning a stack into the alternating turns APIs want ----------------------


def _source_header(message: dict) -> str | None:
    source = (message.get("meta") or {}).get("source")
    return str(source) if source else None


def _as_parts(content: str | list) -> list[dict]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    return list(content)


def _with_source(message: dict) -> str | list:
    """Wrap a message that came from a file or URL so the model knows where it came from.

    The stack keeps content pure (so `llm-fetch | llm-map` sees only the page); the
    provenance from `meta.source` is added here, on the way to the model.
    """
    content = message["content"]
    source = _source_header(message)
    if source is None:
        return content
    if isinstance(content, str):
        return f'<document source="{source}">\n{content}\n</document>'
    return [{"type": "text", "text": f'<document source="{source}">'}, *content,
            {"type": "text", "text": "</document>"}]


def prepare_turns(messages: list[dict]) -> tuple[str | None, list[dict]]:
    """Return (system text, turns) where turns alternate user/assistant.

    System messages anywhere in the stack are joined into one system text, since both
    APIs take instructions apart from the conversation. Consecutive messages of the same
    role are merged (strings joined by a blank line, part lists concatenated), because
    both APIs reject or misread two user turns in a row and callers should not have to care.
    """
    system_texts: list[str] = []
    turns: list[dict] = []
    for message in messages:
        role = message["role"]
        content = _with_source(message)
        if role == "system":
            text = content_text(content)
            if text:
                system_texts.append(text)
            continue
        if turns and turns[-1]["role"] == role:
            previous = turns[-1]["content"]
            if isinstance(previous, str) and isinstance(content, str):
                # A trailing newline (as `echo` leaves) would otherwise widen the gap.
                turns[-1]["content"] = f"{previous.rstrip(chr(10))}\n\n{content}" if previous else content
            else:
                turns[-1]["content"] = _as_parts(previous) + _as_parts(content)
        else:
            turns.append({"role": role, "content": content})
    system = "\n\n".join(system_texts) if system_texts else None
    return system, turns


def has_images(turns: list[dict]) -> bool:
    return any(
        isinstance(turn["content"], list)
        and any(part.get("type") == "image" for part in turn["content"])
        for turn in turns
    )
