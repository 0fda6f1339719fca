"""What `llm models` shows: every model a user can name, and which one is the default."""

from __future__ import annotations

import dataclasses
import os

from llmtools import config as config_module
from llmtools import providers
from llmtools.providers import catalog


@dataclasses.dataclass
class ModelRow:
    name: str
    provider: str
    detail: str
    usable: bool
    is_default: bool = False
    path: str | None = None  # local models: the file (present or where a pull puts it)
    size: int | None = None  # local models: bytes on disk, None when not pulled yet

    def as_dict(self) -> dict:
        row = dataclasses.asdict(self)
        if self.provider != "local":
            del row["path"], row["size"]
        return row


def _local_rows() -> list[ModelRow]:
    """Catalogue models (pulled or not) and every other .gguf file in the models dir."""
    from llmtools import localmodels

    directory = localmodels.models_dir()
    files = {file.path.name: file for file in localmodels.local_files(directory)}
    rows = []
    for model in localmodels.CATALOG.values():
        path = directory / model.filename
        present = files.pop(model.filename, None)
        if present is not None:
            detail = f"{model.filename}, {_size(present.size)}"
        else:
            detail = (f"not pulled yet: `llm models pull {model.name}` ({_size(model.size)}; "
                      f"pulled on first use)")
        rows.append(ModelRow(f"local:{model.name}", "local", detail, True, path=str(path),
                             size=present.size if present else None))
    for file in files.values():
        rows.append(ModelRow(file.model_name, "local", f"{file.path.name}, {_size(file.size)}",
                             True, path=str(file.path), size=file.size))
    return rows


def _size(size: int) -> str:
    return f"{size / 1e6:.1f} MB" if size < 1e9 else f"{size / 1e9:.2f} GB"


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
    rows += _local_rows()
    for name, known in catalog.KNOWN_MODELS.items():
        key_env = providers.key_env(known.provider)
        provider_config = (config.get("providers") or {}).get(known.provider) or {}
        has_key = bool((key_env and os.environ.get(key_env)) or provider_config.get("api_key"))
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
