"""Provider registry: each backend's facts, and its class, which loads on use.

Adding a provider is one entry here and one module. The entry carries what the rest of
the suite needs to know without importing the module (so without its SDK): the
environment variables for its key and base URL, the model-name prefixes that mean it, and
whether it is worth keeping warm in the daemon. Only the chosen provider's module (and so
its SDK) is imported, and only when a model of its is called: `--help`, `--version` and
stack plumbing never pay for an SDK.
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Any

from llmtools.providers.base import ModelSpec, Provider


@dataclasses.dataclass(frozen=True)
class ProviderEntry:
    target: str  # "module:Class"
    key_env: str | None = None
    base_url_env: str | None = None
    # Names of models this provider serves that no catalogue lists (new or dated models).
    name_prefixes: tuple[str, ...] = ()
    # `NAME:model` picks this provider explicitly (`-m openai:my-model`, `-m local:smollm2`).
    explicit_prefix: bool = False
    # Worth a daemon: a slow SDK import, warm connection pools, a loaded model.
    stays_warm: bool = False
    # What its models take. Kept here, not on the class, so that checking a request
    # (`ask.check_request`, `structured.supports_schema`) imports no provider module.
    supports_images: bool = False
    supports_thinking: bool = False
    # Constrains the answer to Request.schema (see Request).
    supports_schema: bool = False


_TAKES_ALL: dict[str, Any] = {"supports_images": True, "supports_thinking": True, "supports_schema": True}

PROVIDERS: dict[str, ProviderEntry] = {
    # echo shows a schema among the options, as a real provider would be sent it.
    "echo": ProviderEntry("llmtools.providers.echo:EchoProvider", **_TAKES_ALL),
    "anthropic": ProviderEntry("llmtools.providers.anthropic:AnthropicProvider",
                               key_env="ANTHROPIC_API_KEY", base_url_env="ANTHROPIC_BASE_URL",
                               name_prefixes=("claude-",), explicit_prefix=True, stays_warm=True, **_TAKES_ALL),
    "openai": ProviderEntry("llmtools.providers.openai:OpenAIProvider",
                            key_env="OPENAI_API_KEY", base_url_env="OPENAI_BASE_URL",
                            name_prefixes=("gpt-", "chatgpt-", "o1", "o3", "o4"), explicit_prefix=True,
                            stays_warm=True, **_TAKES_ALL),
    # A schema becomes a llama.cpp grammar (llama_engine.schema_grammar).
    "local": ProviderEntry("llmtools.providers.local:LocalProvider", explicit_prefix=True, stays_warm=True,
                           supports_schema=True),
    # script records a schema and does not enforce it: the script says what comes back.
    "script": ProviderEntry("llmtools.providers.script:ScriptProvider", **_TAKES_ALL),
}

# An `openai` model whose base_url is some other server (llama.cpp, llamafile, vLLM,
# Ollama) gets this subclass: token counts, usage and context checks that suit it.
COMPATIBLE_SERVER = "llmtools.providers.compatible:CompatibleServerProvider"


def entry(name: str) -> ProviderEntry:
    return PROVIDERS[name]


def key_env(name: str) -> str | None:
    found = PROVIDERS.get(name)
    return found.key_env if found else None


def stays_warm(name: str) -> bool:
    found = PROVIDERS.get(name)
    return bool(found and found.stays_warm)


def provider_for_prefix(model_id: str) -> str | None:
    for name, found in PROVIDERS.items():
        if any(model_id.startswith(prefix) for prefix in found.name_prefixes):
            return name
    return None


def _load_class(target: str) -> type[Provider]:
    module_name, _, class_name = target.partition(":")
    return getattr(importlib.import_module(module_name), class_name)


def provider_class(name: str) -> type[Provider]:
    return _load_class(PROVIDERS[name].target)


def is_compatible_server(spec: ModelSpec) -> bool:
    """An `openai` model served by something other than the OpenAI API itself."""
    if spec.provider != "openai" or not spec.base_url:
        return False
    from urllib.parse import urlsplit

    host = urlsplit(spec.base_url).hostname or ""
    return not (host == "openai.com" or host.endswith(".openai.com"))


def load_provider_class(spec: ModelSpec) -> type[Provider]:
    """The class that serves `spec` (importing it imports its SDK)."""
    return _load_class(COMPATIBLE_SERVER) if is_compatible_server(spec) else provider_class(spec.provider)


def load_provider(spec: ModelSpec) -> Provider:
    return load_provider_class(spec)(spec)
