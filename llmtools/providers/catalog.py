"""Models the suite knows by name: which provider serves them, their prices and context.

Prices are US dollars per million tokens (input, output), as the providers list them;
a `[models.NAME]` entry in config.toml can set `price_input`/`price_output` for any
other model. A dated id such as `claude-sonnet-4-5-20250929` takes the price of the
longest known name it starts with.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class KnownModel:
    provider: str
    price_input: float
    price_output: float
    context_size: int


KNOWN_MODELS: dict[str, KnownModel] = {
    # Anthropic
    "claude-opus-4-1": KnownModel("anthropic", 15.0, 75.0, 200_000),
    "claude-opus-4-5": KnownModel("anthropic", 5.0, 25.0, 200_000),
    "claude-opus-4-6": KnownModel("anthropic", 5.0, 25.0, 200_000),
    "claude-sonnet-4-6": KnownModel("anthropic", 3.0, 15.0, 200_000),
    "claude-sonnet-4-5": KnownModel("anthropic", 3.0, 15.0, 200_000),
    "claude-sonnet-4": KnownModel("anthropic", 3.0, 15.0, 200_000),
    "claude-haiku-4-5": KnownModel("anthropic", 1.0, 5.0, 200_000),
    "claude-3-5-haiku": KnownModel("anthropic", 0.8, 4.0, 200_000),
    # OpenAI
    "gpt-5": KnownModel("openai", 1.25, 10.0, 400_000),
    "gpt-5-mini": KnownModel("openai", 0.25, 2.0, 400_000),
    "gpt-5-nano": KnownModel("openai", 0.05, 0.4, 400_000),
    "gpt-4.1": KnownModel("openai", 2.0, 8.0, 1_047_576),
    "gpt-4.1-mini": KnownModel("openai", 0.4, 1.6, 1_047_576),
    "gpt-4.1-nano": KnownModel("openai", 0.1, 0.4, 1_047_576),
    "gpt-4o": KnownModel("openai", 2.5, 10.0, 128_000),
    "gpt-4o-mini": KnownModel("openai", 0.15, 0.6, 128_000),
    "o3": KnownModel("openai", 2.0, 8.0, 200_000),
    "o3-mini": KnownModel("openai", 1.1, 4.4, 200_000),
    "o4-mini": KnownModel("openai", 1.1, 4.4, 200_000),
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
             input_tokens: int | None, output_tokens: int | None) -> float | None:
    if price_input is None or price_output is None:
        return None
    return ((input_tokens or 0) * price_input + (output_tokens or 0) * price_output) / 1_000_000
