"""What `llm models` shows: every model a user can name, and which one is the default."""

from __future__ import annotations

import dataclasses
import os

from llmtools import config as config_module
from llmtools.providers import catalog


@dataclasses.dataclass
class ModelRow:
    name: str
    provider: str
    detail: str
    usable: bool
    is_default: bool = False

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def _price(known: catalog.KnownModel) -> str:
    return (f"${known.price_input:g}/${known.price_output:g} per Mtok in/out, "
            f"{known.context_size // 1000}k context")


def model_rows(config: dict) -> list[ModelRow]:
    default_name, _ = config_module.default_model(config)
    resolved_default = config_module.follow_aliases(default_name, config)
    rows = [ModelRow("echo", "echo", "built in: answers with exactly what it would send", True)]
    for name, entry in sorted((config.get("models") or {}).items()):
        if isinstance(entry, dict):
            where = entry.get("base_url") or entry.get("path") or entry.get("provider", "openai")
            rows.append(ModelRow(name, str(entry.get("provider", "openai")),
                                 f"configured: {where}", True))
    for name, known in catalog.KNOWN_MODELS.items():
        key_env = config_module.PROVIDER_KEY_ENV[known.provider]
        provider_config = (config.get("providers") or {}).get(known.provider) or {}
        has_key = bool(os.environ.get(key_env) or provider_config.get("api_key"))
        rows.append(ModelRow(name, known.provider,
                             _price(known) + ("" if has_key else f" (needs {key_env})"), has_key))
    for row in rows:
        row.is_default = row.name == resolved_default
    if not any(row.is_default for row in rows):
        rows.insert(0, ModelRow(resolved_default, "?", "default", True, is_default=True))
    return rows


def alias_rows(config: dict) -> list[tuple[str, str, str]]:
    """(alias, target, "built in" or "config")."""
    configured = config.get("aliases") or {}
    rows = [(name, target, "built in") for name, target in catalog.BUILTIN_ALIASES.items()
            if name not in configured]
    rows += [(str(name), str(target), "config") for name, target in configured.items()]
    return sorted(rows)
