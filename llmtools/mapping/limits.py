"""A model's context size, in a module of its own: `llm` asks it before every call, and
importing the map machinery (calls, chunking, strategy) for that would tax every command."""

from __future__ import annotations

from llmtools.providers.base import ModelSpec

LOCAL_DEFAULT_CONTEXT = 8192  # what llama_engine gives a GGUF model unless told otherwise
# Another tokenizer may count the same text up to this much higher than cl100k.
FIT_MARGIN = 1.15


def context_limit(spec: ModelSpec) -> int | None:
    """The model's context in tokens, when known."""
    size = spec.context_size or spec.options.get("context_size")
    if size:
        return int(size)
    return LOCAL_DEFAULT_CONTEXT if spec.provider == "local" else None
