"""Provider registry: a resolved `ModelSpec` names its provider; the module loads on use.

Only the chosen provider's module (and so its SDK) is imported, and only when a model
of its is called: `--help`, `--version` and stack plumbing never pay for an SDK.
"""

from __future__ import annotations

import importlib

from llmtools.providers.base import ModelSpec, Provider

# provider name -> "module:Class"
PROVIDERS: dict[str, str] = {
    "echo": "llmtools.providers.echo:EchoProvider",
    "anthropic": "llmtools.providers.anthropic:AnthropicProvider",
    "openai": "llmtools.providers.openai:OpenAIProvider",
}


def provider_class(name: str) -> type[Provider]:
    module_name, _, class_name = PROVIDERS[name].partition(":")
    return getattr(importlib.import_module(module_name), class_name)


def load_provider(spec: ModelSpec) -> Provider:
    return provider_class(spec.provider)(spec)
