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
    "local": "llmtools.providers.local:LocalProvider",
    "script": "llmtools.providers.script:ScriptProvider",
}

# An `openai` model whose base_url is some other server (llama.cpp, llamafile, vLLM,
# Ollama) gets this subclass: token counts, usage and context checks that suit it.
COMPATIBLE_SERVER = "llmtools.providers.compatible:CompatibleServerProvider"


def _load_class(target: str) -> type[Provider]:
    module_name, _, class_name = target.partition(":")
    return getattr(importlib.import_module(module_name), class_name)


def provider_class(name: str) -> type[Provider]:
    return _load_class(PROVIDERS[name])


def is_compatible_server(spec: ModelSpec) -> bool:
    """An `openai` model served by something other than the OpenAI API itself."""
    if spec.provider != "openai" or not spec.base_url:
        return False
    from urllib.parse import urlsplit

    host = urlsplit(spec.base_url).hostname or ""
    return not (host == "openai.com" or host.endswith(".openai.com"))


def load_provider(spec: ModelSpec) -> Provider:
    if is_compatible_server(spec):
        return _load_class(COMPATIBLE_SERVER)(spec)
    return provider_class(spec.provider)(spec)
