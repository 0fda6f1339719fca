"""OpenAI-compatible servers (llama.cpp's `llama-server`, llamafile, `python -m
llama_cpp.server`, vLLM, Ollama, LM Studio): the OpenAI provider plus what such servers
leave out.

Any `openai` model with a `base_url` that is not api.openai.com gets this class (see
`llmtools.providers.load_provider`); in config that is a `[models.NAME]` table:

    [models.qwen]
    base_url = "http://127.0.0.1:8080/v1"
    model = "qwen2.5-7b-instruct"   # optional: the id the server is sent
    context_size = 32768            # optional: enables the prompt-fit check below
    # api_key / api_key_env: optional; none is sent as a placeholder and never checked

What it adds to `OpenAIProvider`:

- Token counts that suit the model: the server's own tokenizer when it has an endpoint
  for it (`POST /tokenize` on llama.cpp's server, llamafile and vLLM, `POST
  /extras/tokenize` on llama_cpp.server), else a conservative estimate (UTF-8 bytes / 3). Never tiktoken: an
  OpenAI encoding miscounts a llama model's tokens.
- With `context_size` set, a prompt that would not fit is cut before it is sent, as
  `llmtools.providers.context` describes, with a warning on stderr (the server would
  otherwise refuse it, or silently drop the start of it, as llama.cpp does).
- Usage when the server streams none (llama_cpp.server, older llamafiles): counted as
  above, so `--profile` shows tokens and tokens/s for every server.
- Structured output (`Request.schema`) as `{"type": "json_object", "schema": ...}`, the
  form llama.cpp's server and llama_cpp.server turn into a grammar and vLLM and Ollama
  take as JSON mode; `response_format = "json_schema"` in the model's table sends the
  OpenAI form instead (LM Studio, vLLM's exact schemas).
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterator
from typing import Any

from llmtools.notices import tell
from llmtools.providers.base import (
    Event,
    Finished,
    ModelSpec,
    Request,
    TextDelta,
    Usage,
    prepare_turns,
)
from llmtools.providers.context import answer_room, estimate_tokens, fit_messages
from llmtools.providers.openai import OpenAIProvider
from llmtools.stack import content_text

# (path under the server root, request body for `text`, given the model id). `/tokenize`
# is llama.cpp's server and llamafile (`content`) and vLLM (`prompt`, `model`): each
# ignores the other's keys. `/extras/tokenize` is llama_cpp.server.
TOKENIZE_ROUTES: tuple[tuple[str, Callable[[str, str], dict]], ...] = (
    ("/tokenize", lambda text, model: {"content": text, "add_special": False, "prompt": text,
                                       "model": model, "add_special_tokens": False}),
    ("/extras/tokenize", lambda text, model: {"input": text}),
)
# Tokens a chat template adds around each message (role markers, separators), and once.
PER_MESSAGE_TOKENS = 4
PER_PROMPT_TOKENS = 3
TOKENIZE_TIMEOUT = 10.0


class CompatibleServerProvider(OpenAIProvider):
    def __init__(self, spec: ModelSpec) -> None:
        super().__init__(spec)
        self._route: tuple[str, Callable[[str, str], dict]] | None = None
        self._route_known = False
        self._route_lock = threading.Lock()
        self._http: Any = None
        self._counts: dict[str, int] = {}

    def response_format(self, schema: dict) -> dict[str, Any]:
        if self.spec.options.get("response_format") == "json_schema":
            return super().response_format(schema)
        return {"type": "json_object", "schema": schema}

    def close(self) -> None:
        super().close()
        http, self._http = self._http, None
        if http is not None:
            http.close()

    # --- counting -----------------------------------------------------------------

    def _root_url(self) -> str:
        return (self.spec.base_url or "").rstrip("/").removesuffix("/v1")

    def _http_client(self) -> Any:
        if self._http is None:
            import httpx

            headers = {"Authorization": f"Bearer {self.spec.api_key}"} if self.spec.api_key else {}
            self._http = httpx.Client(headers=headers, timeout=httpx.Timeout(
                min(TOKENIZE_TIMEOUT, self.spec.timeout), connect=min(5.0, self.spec.timeout)))
        return self._http

    def _server_count(self, text: str) -> int | None:
        """Tokens by the server's own tokenizer, or None if it has no endpoint for it."""
        import httpx

        with self._route_lock:
            if self._route_known:
                if self._route is None:
                    return None
                routes = [self._route]
            else:
                routes = list(TOKENIZE_ROUTES)
            answered = True
            for route in routes:
                path, body = route
                tokens = None
                try:
                    response = self._http_client().post(self._root_url() + path,
                                                        json=body(text, self.spec.model_id))
                    if response.status_code == 200:
                        tokens = response.json().get("tokens")
                except httpx.HTTPError:
                    answered = False  # down, or slow: ask again next time
                except (ValueError, AttributeError):
                    pass
                if isinstance(tokens, list):
                    self._route, self._route_known = route, True
                    return len(tokens)
            if answered and not self._route_known:
                self._route_known = True  # the server has no such endpoint: estimate from now on
            return None

    def count_tokens(self, text: str) -> tuple[int, bool]:
        """(tokens in `text`, whether that is an estimate)."""
        if not text:
            return 0, False
        cached = self._counts.get(text)
        if cached is not None:
            return cached, False
        counted = self._server_count(text)
        if counted is None:
            return estimate_tokens(text), True
        if len(self._counts) > 256:
            self._counts.clear()
        self._counts[text] = counted
        return counted, False

    def _count_messages(self, messages: list[dict], counter: Callable[[str], int]) -> int:
        return PER_PROMPT_TOKENS + sum(PER_MESSAGE_TOKENS + counter(content_text(message["content"]))
                                       for message in messages)

    # --- the request --------------------------------------------------------------

    def stream(self, request: Request) -> Iterator[Event]:
        system, turns = prepare_turns(request.messages)
        messages = ([{"role": "system", "content": system}] if system else []) + turns
        if self.spec.context_size:
            messages = self._fit(messages, request.max_tokens or self.spec.options.get("max_tokens"))
            request = dataclasses.replace(request, messages=messages)
        usage_sent = False
        answer: list[str] = []
        for event in super().stream(request):
            if isinstance(event, Usage) and (event.input_tokens or event.output_tokens):
                usage_sent = True
            elif isinstance(event, TextDelta):
                answer.append(event.text)
            elif isinstance(event, Finished) and not usage_sent:
                yield self._counted_usage(messages, answer)
            yield event

    def _fit(self, messages: list[dict], max_tokens: int | None) -> list[dict]:
        context = int(self.spec.context_size or 0)
        room = answer_room(context, max_tokens)
        # The estimate errs high, so a prompt it says fits does fit: no server round trip.
        if self._count_messages(messages, estimate_tokens) <= context - room:
            return messages
        _, estimated = self.count_tokens(content_text(messages[-1]["content"]))  # finds the endpoint

        def count_text(text: str) -> int:
            return self.count_tokens(text)[0]

        fitted = fit_messages(
            messages, context_size=context, room=room, model_name=self.spec.name,
            count_messages=lambda candidate: self._count_messages(candidate, count_text),
            count_text=count_text, estimated=estimated)
        if fitted.warning:
            tell("warning", fitted.warning)
        return fitted.messages

    def _counted_usage(self, messages: list[dict], answer: list[str]) -> Usage:
        prompt = self._count_messages(messages, lambda text: self.count_tokens(text)[0])
        output, estimated = self.count_tokens("".join(answer))
        if estimated:
            # Servers stream about one token per chunk: closer than a byte estimate.
            output = len(answer)
        return Usage(input_tokens=prompt, output_tokens=output)

