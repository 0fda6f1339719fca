"""The llama-cpp-python side of local models: what runs inside a model's worker process.

`LlamaEngine` loads one GGUF file and answers requests on it. The prompt is the model's
own chat template (from the GGUF header) rendered over the stack, tokenized with the
model's own tokenizer, so the usage reported is exact. The context is `context_size` from
config if set, else what the model was trained with, capped at `MAX_DEFAULT_CONTEXT` (the
KV cache grows with it). A prompt that does not fit is cut as
`llmtools.providers.context` describes, with a warning. llama.cpp keeps the evaluated
prompt in its KV cache, so a conversation that grows by a turn only evaluates new tokens.

Options a `[models.NAME]` entry (`provider = "local"`, `path = "..."`) may set:
`context_size`, `n_threads`, `n_threads_batch`, `n_batch`, `n_gpu_layers`, `flash_attn`,
`seed`, `temperature`, `top_p`, `top_k`, `min_p`, `repeat_penalty`, `max_tokens`.
"""

from __future__ import annotations

import codecs
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from llmtools.errors import InputError, ServiceUnavailable
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
from llmtools.providers.context import answer_room, fit_messages

MAX_DEFAULT_CONTEXT = 8192
DEFAULT_TEMPERATURE = 0.2  # llama-cpp-python's chat default; small models ramble when hotter
# Small models fall into loops ("Unix-Pipes: Unsucré: ..." until the context is full): a
# mild repetition penalty (llama.cpp's long-standing 1.1) and a cap on an answer nobody
# bounded keep `llm "hello"` from running for minutes. Both can be set per model.
DEFAULT_REPEAT_PENALTY = 1.1
DEFAULT_MAX_TOKENS = 1024

# Keys of spec.options passed to llama_cpp.Llama() as they are.
LOAD_OPTIONS = ("n_threads", "n_threads_batch", "n_batch", "n_ubatch", "n_gpu_layers",
                "flash_attn", "use_mmap", "use_mlock")
SAMPLING_OPTIONS = ("top_p", "top_k", "min_p", "repeat_penalty", "presence_penalty",
                    "frequency_penalty")


class LlamaEngine:
    """One loaded GGUF model: the prompt rendering, the token counts and the generation loop.

    Lives in the model's worker process (`llmtools.providers.local_worker`), never in the
    daemon or a command: a native crash here must cost one request, not the process that
    holds the browser and the runtimes. Single-threaded: the worker runs one op at a time.
    """

    def __init__(self, spec: ModelSpec, path: Path) -> None:
        from llmtools import localmodels

        self.spec = spec
        self.path = path
        trained = localmodels.context_length(path)  # also refuses a file that is not GGUF
        context = spec.context_size or spec.options.get("context_size")
        if not context:
            context = min(trained or MAX_DEFAULT_CONTEXT, MAX_DEFAULT_CONTEXT)
        try:
            import llama_cpp
        except ImportError:
            raise ServiceUnavailable(
                "local models need llama-cpp-python: pip install 'llmtools[local]'") from None
        options = {key: spec.options[key] for key in LOAD_OPTIONS if key in spec.options}
        try:
            self.llama = llama_cpp.Llama(model_path=str(path), n_ctx=int(context), verbose=False,
                                         **options)
        except ValueError as error:  # llama.cpp could not load it: corrupt, or an unknown arch
            raise InputError(f"{path}: llama.cpp cannot load this model ({error})") from None
        self.formatter = _chat_formatter(self.llama)
        # llama.cpp rounds the context up (to 256 at least) but llama-cpp-python sizes its
        # token buffer as asked: the smaller of the two is what fits.
        self.context_size = min(int(context), self.llama.n_ctx())

    def close(self) -> None:
        self.llama.close()

    # --- tokens ----------------------------------------------------------------------

    def count_tokens(self, text: str) -> int:
        """Tokens in `text` by the model's own tokenizer (no BOS, special tokens as text)."""
        return len(self.llama.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def _render(self, messages: list[dict]) -> Any:
        try:
            return self.formatter(messages=messages)
        except Exception as error:  # noqa: BLE001  (jinja2's errors, or the template's raise_exception())
            if messages and messages[0]["role"] == "system" and len(messages) > 1:
                # Some templates (Gemma's) refuse a system role: give it to the first turn.
                first = messages[1]
                merged = {**first, "content": f"{messages[0]['content']}\n\n{first['content']}"}
                try:
                    return self.formatter(messages=[merged, *messages[2:]])
                except Exception:  # noqa: BLE001, S110  (the first error is the one to report)
                    pass
            raise InputError(f"the chat template of {self.spec.name} refused these messages: "
                             f"{error}") from None

    def prompt_tokens(self, messages: list[dict]) -> list[int]:
        rendered = self._render(messages)
        return self.llama.tokenize(rendered.prompt.encode("utf-8"),
                                   add_bos=not rendered.added_special, special=True)

    def _stop_strings(self, messages: list[dict]) -> list[str]:
        stop = self._render(messages).stop
        stops = [stop] if isinstance(stop, str) else list(stop or [])
        return [text for text in stops if text]

    # --- generating ------------------------------------------------------------------

    def generate(self, request: Request, cancelled: Callable[[], bool] = lambda: False
                 ) -> Iterator[Event]:
        """Stream the answer to `request`; stop early (as at a stop string) once `cancelled()`."""
        import llama_cpp

        llama = self.llama
        messages, prompt, limit = self._fit(request)
        stops = StopStrings(self._stop_strings(messages)
                            + [text for text in request.stop or [] if text])
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        generated = 0
        stop_reason = "length"
        yield Usage(input_tokens=len(prompt), output_tokens=0,
                    cache_read_tokens=self._reusable_prefix(prompt, request.cache))
        self._seed()
        sampling = self._sampling()
        if request.schema is not None:
            sampling["grammar"] = schema_grammar(request.schema)
        tokens = llama.generate(prompt, temp=self._temperature(request), **sampling)
        vocab = llama._model.vocab
        try:
            for token in tokens:
                if llama_cpp.llama_vocab_is_eog(vocab, token) or cancelled():
                    stop_reason = "stop"
                    break
                generated += 1
                text, stopped = stops.feed(decoder.decode(llama.detokenize([token])))
                if text:
                    yield TextDelta(text)
                if stopped:
                    stop_reason = "stop"
                    break
                if generated >= limit:
                    break
        finally:
            # Closing the generator leaves the prompt and the answer in the KV cache,
            # which the next request reuses as far as its tokens are the same.
            tokens.close()
        if not stops.stopped:
            rest, _ = stops.feed(decoder.decode(b"", final=True), final=True)
            if rest:
                yield TextDelta(rest)
        yield Usage(input_tokens=len(prompt), output_tokens=generated)
        yield Finished(stop_reason)

    def _reusable_prefix(self, prompt: list[int], cache: bool) -> int:
        """How many of `prompt`'s tokens the KV cache already holds, which `Llama.generate`
        keeps instead of evaluating again (all but the last when the whole prompt is there,
        since sampling needs fresh logits). With caching off the cache is dropped first."""
        llama = self.llama
        if not cache:
            llama.reset()
            return 0
        held = llama.n_tokens
        shared = 0
        for cached, wanted in zip(llama.input_ids[:held].tolist(), prompt, strict=False):
            if cached != wanted:
                break
            shared += 1
        return shared - 1 if shared == len(prompt) and shared else shared

    def _fit(self, request: Request) -> tuple[list[dict], list[int], int]:
        """(the messages as sent, their prompt tokens, the most tokens the answer may have)."""
        context = self.context_size
        system, turns = prepare_turns(request.messages)
        messages = ([{"role": "system", "content": system}] if system else []) + [
            {"role": turn["role"], "content": _plain_text(turn["content"], self.spec.name)}
            for turn in turns]
        max_tokens = request.max_tokens or self.spec.options.get("max_tokens")
        fitted = fit_messages(
            messages, context_size=context, room=answer_room(context, max_tokens),
            model_name=self.spec.name,
            count_messages=lambda candidate: len(self.prompt_tokens(candidate)),
            count_text=self.count_tokens)
        if fitted.warning:
            tell("warning", fitted.warning)
        prompt = self.prompt_tokens(fitted.messages)
        limit = context - len(prompt)
        if max_tokens and max_tokens > limit:
            tell("warning", f"the answer can be at most {limit} tokens: the {context}-token context of "
                            f"{self.spec.name} holds the {len(prompt)}-token prompt too")
        return fitted.messages, prompt, min(max_tokens or DEFAULT_MAX_TOKENS, limit)

    def _temperature(self, request: Request) -> float:
        if request.temperature is not None:
            return float(request.temperature)
        return float(self.spec.options.get("temperature", DEFAULT_TEMPERATURE))

    def _seed(self) -> None:
        seed = self.spec.options.get("seed")
        self.llama.set_seed(int(seed) if seed is not None else random.randrange(2**31))

    def _sampling(self) -> dict:
        options = self.spec.options
        sampling = {key: (int if key == "top_k" else float)(options[key])
                    for key in SAMPLING_OPTIONS if key in options}
        sampling.setdefault("repeat_penalty", DEFAULT_REPEAT_PENALTY)
        return sampling


# --- helpers ------------------------------------------------------------------------------


def schema_grammar(schema: dict) -> Any:
    """A llama.cpp grammar that only lets the model write JSON matching `schema`."""
    import json

    from llama_cpp import LlamaGrammar

    try:
        return LlamaGrammar.from_json_schema(json.dumps(schema), verbose=False)
    except Exception as error:  # noqa: BLE001  (the converter raises bare Exceptions and ValueErrors)
        raise InputError(f"cannot make a grammar of this JSON schema: {error}") from None


class StopStrings:
    """Holds back text that may be the start of a stop string; stops at a whole one."""

    def __init__(self, stops: list[str]) -> None:
        self.stops = stops
        self.pending = ""
        self.stopped = False

    def feed(self, text: str, *, final: bool = False) -> tuple[str, bool]:
        if not self.stops:
            return text, False
        self.pending += text
        found = [index for index in (self.pending.find(stop) for stop in self.stops) if index >= 0]
        if found:
            out, self.pending, self.stopped = self.pending[: min(found)], "", True
            return out, True
        if final:
            out, self.pending = self.pending, ""
            return out, False
        keep = 0
        for stop in self.stops:
            for size in range(min(len(stop) - 1, len(self.pending)), keep, -1):
                if stop.startswith(self.pending[-size:]):
                    keep = size
                    break
        out = self.pending[: len(self.pending) - keep]
        self.pending = self.pending[len(self.pending) - keep:]
        return out, False


def _plain_text(content: str | list, model_name: str) -> str:
    if isinstance(content, str):
        return content
    texts = []
    for part in content:
        if part.get("type") != "text":
            raise InputError(f"model {model_name} cannot read images")
        texts.append(part["text"])
    return "\n".join(texts)


def _chat_formatter(llama: Any) -> Any:
    """The GGUF's own chat template, rendered the way llama-cpp-python renders it."""
    from llama_cpp import llama_chat_format

    template = llama.metadata.get("tokenizer.chat_template")
    if template:
        eos = llama.token_eos()
        bos = llama.token_bos()
        return llama_chat_format.Jinja2ChatFormatter(
            template=template,
            eos_token=llama._model.token_get_text(eos) if eos != -1 else "",
            bos_token=llama._model.token_get_text(bos) if bos != -1 else "",
            stop_token_ids=[eos],
        )
    # No template in the file (old conversions): ChatML, which most instruct models
    # of the last years were trained on, rather than llama-cpp-python's llama-2 guess.
    return llama_chat_format.format_chatml

