"""Models the suite knows by name: which provider serves them, their prices and context.

Prices are US dollars per million tokens (input, output, and prompt-cache reads and
writes), as the providers list them; a `[models.NAME]` entry in config.toml can set
`price_input`/`price_output`/`price_cache_read`/`price_cache_write` for any other model.
Anthropic bills a cache write at 1.25x the input price (5-minute cache) and a read at
0.1x; OpenAI bills cached input at its listed price and writes at the input price.
A dated id such as `claude-sonnet-4-5-20250929` takes the price of the longest known
name it starts with.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class KnownModel:
    provider: str
    price_input: float
    price_output: float
    context_size: int
    price_cache_read: float | None = None  # None: the input price
    price_cache_write: float | None = None


def _claude(price_input: float, price_output: float) -> KnownModel:
    return KnownModel("anthropic", price_input, price_output, 200_000,
                      price_cache_read=round(price_input * 0.1, 6),
                      price_cache_write=round(price_input * 1.25, 6))


def _openai(price_input: float, price_output: float, context_size: int,
            cached_input: float) -> KnownModel:
    return KnownModel("openai", price_input, price_output, context_size,
                      price_cache_read=cached_input, price_cache_write=price_input)


KNOWN_MODELS: dict[str, KnownModel] = {
    # Anthropic
    "claude-opus-4-1": _claude(15.0, 75.0),
    "claude-opus-4-5": _claude(5.0, 25.0),
    "claude-opus-4-6": _claude(5.0, 25.0),
    "claude-sonnet-4-6": _claude(3.0, 15.0),
    "claude-sonnet-4-5": _claude(3.0, 15.0),
    "claude-sonnet-4": _claude(3.0, 15.0),
    "claude-haiku-4-5": _claude(1.0, 5.0),
    "claude-3-5-haiku": _claude(0.8, 4.0),
    # OpenAI (the last figure is the cached-input price)
    "gpt-5": _openai(1.25, 10.0, 400_000, 0.125),
    "gpt-5-mini": _openai(0.25, 2.0, 400_000, 0.025),
    "gpt-5-nano": _openai(0.05, 0.4, 400_000, 0.005),
    "gpt-4.1": _openai(2.0, 8.0, 1_047_576, 0.5),
    "gpt-4.1-mini": _openai(0.4, 1.6, 1_047_576, 0.1),
    "gpt-4.1-nano": _openai(0.1, 0.4, 1_047_576, 0.025),
    "gpt-4o": _openai(2.5, 10.0, 128_000, 1.25),
    "gpt-4o-mini": _openai(0.15, 0.6, 128_000, 0.075),
    "o3": _openai(2.0, 8.0, 200_000, 0.5),
    "o3-mini": _openai(1.1, 4.4, 200_000, 0.55),
    "o4-mini": _openai(1.1, 4.4, 200_000, 0.275),
}

BUILTIN_ALIASES: dict[str, str] = {
    "sonnet": "claude-sonnet-4-6",
    "opus": "claude-opus-4-6",
    "haiku": "claude-haiku-4-5",
    "4.1": "gpt-4.1",
    "4o": "gpt-4o",
    "smollm2": "local:smollm2",
}

# claude-sonnet-4-5 reaches end-of-life on 2026-11-30 (the SDK warns); 4-6 replaces it.
DEFAULT_ANTHROPIC_MODEL = "claude-sonnet-4-6"
DEFAULT_OPENAI_MODEL = "gpt-4.1"
DEFAULT_LOCAL_MODEL = "local:smollm2"

def known_model(model_id: str) -> KnownModel | None:
    if model_id in KNOWN_MODELS:
        return KNOWN_MODELS[model_id]
    matches = [name for name in KNOWN_MODELS if model_id.startswith(name + "-")]
    return KNOWN_MODELS[max(matches, key=len)] if matches else None


def provider_for_name(model_id: str) -> str | None:
    known = known_model(model_id)
    if known:
        return known.provider
    from llmtools.providers import provider_for_prefix

    return provider_for_prefix(model_id)


def cost_usd(price_input: float | None, price_output: float | None,
             input_tokens: int | None, output_tokens: int | None, *,
             cache_read_tokens: int | None = None, cache_write_tokens: int | None = None,
             price_cache_read: float | None = None,
             price_cache_write: float | None = None) -> float | None:
    """US dollars for a call; `input_tokens` is the whole prompt, cache reads and writes
    included, and those are priced at their own rates (the input price when unknown)."""
    if price_input is None or price_output is None:
        return None
    read = cache_read_tokens or 0
    written = cache_write_tokens or 0
    full_rate = max(0, (input_tokens or 0) - read - written)
    read_price = price_input if price_cache_read is None else price_cache_read
    write_price = price_input if price_cache_write is None else price_cache_write
    return (full_rate * price_input + read * read_price + written * write_price
            + (output_tokens or 0) * price_output) / 1_000_000
