"""Where state lives, what config.toml says, and which model a name means.

Paths follow the XDG base directories (config, data, cache, runtime); `LLMTOOLS_HOME`
moves all of them under one directory, which is how tests isolate themselves.

Settings resolve with one precedence everywhere: flag > environment > config.toml >
built-in default. The model is chosen the same way: `-m` > `LLMTOOLS_MODEL` >
`default_model` in config > Anthropic if `ANTHROPIC_API_KEY` is set, else OpenAI if
`OPENAI_API_KEY` is set, else the embedded local model. Two models need nothing at all:
`echo` (answers with what it was sent) and `script:PATH` (replies queued in a file).

config.toml (all keys optional):

    default_model = "sonnet"
    timeout = 120            # seconds to wait for the first (and each next) byte
    prompt_cache = true      # provider prompt caching and local KV reuse (LLMTOOLS_PROMPT_CACHE=0: off)
    retries = 3              # resends on 429/5xx/overload/timeouts
    retry_base_delay = 1.0   # first backoff in seconds, doubled per attempt, jittered

    [aliases]
    fast = "claude-haiku-4-5"

    [providers.anthropic]    # and [providers.openai]
    api_key = "..."          # ANTHROPIC_API_KEY / OPENAI_API_KEY take precedence
    base_url = "..."         # ANTHROPIC_BASE_URL / OPENAI_BASE_URL take precedence

    [models.qwen]            # any OpenAI-compatible server
    base_url = "http://127.0.0.1:8080/v1"
    model = "qwen2.5-7b-instruct"   # id sent to the server (default: the table name)
    api_key_env = "QWEN_KEY"        # or api_key = "..."; optional for local servers
    context_size = 32768
    price_input = 0.0               # USD per million tokens
    price_output = 0.0
    price_cache_read = 0.0          # prompt-cache reads and writes (default: price_input)
    price_cache_write = 0.0

    [models.qwen-local]      # a GGUF file run in-process (llmtools.providers.local)
    provider = "local"
    path = "~/models/qwen2.5-7b-instruct-q4_k_m.gguf"   # or a name in the models dir
    context_size = 16384            # default: the model's own, at most 8192
    n_threads = 4                   # and other llama_cpp.Llama / sampling options

    [models.small-script]    # scripted replies (tests, demos) with a context size to fit
    provider = "script"
    path = "replies.jsonl"
    context_size = 2000

    [map]                    # llm-map, and llm / llm_call reading what does not fit
    jobs = 8                 # calls at once (default: by provider; local models 1)
    embedder = "bm25"        # bm25, hashed, local:MODEL, gguf:PATH, openai:MODEL, A+B
    batch_poll_interval = 30
"""

from __future__ import annotations

import os
import re
from functools import cache
from pathlib import Path

from llmtools import providers
from llmtools.errors import InputError, UsageError
from llmtools.providers import catalog
from llmtools.providers.base import (
    DEFAULT_MODEL_TIMEOUT,
    DEFAULT_RETRIES,
    DEFAULT_RETRY_BASE_DELAY,
    ModelSpec,
)
from llmtools.statedirs import paths

# --- config.toml --------------------------------------------------------------


def load_config(path: Path | None = None) -> dict:
    path = path or paths().config_file
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as error:
        raise InputError(f"{path}: {error.strerror}") from None
    import tomllib

    try:
        parsed = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise InputError(f"{path}: {error}") from None
    from llmtools import configschema
    from llmtools.notices import warn

    return configschema.check(parsed, path, warn=warn)


def _toml_value(value: str | int | float | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def set_config_value(table: str | None, key: str, value: str | None, path: Path | None = None) -> None:
    """Set (or with value None, remove) one key, keeping the rest of the file as written.

    A targeted edit rather than a rewrite: a user's comments and layout are theirs.
    Only simple `key = value` lines are touched.
    """
    path = path or paths().config_file
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    key_line = re.compile(rf"^\s*{re.escape(key)}\s*=")
    header = re.compile(r"^\s*\[")
    start, end = 0, len(lines)
    if table is not None:
        wanted = re.compile(rf"^\s*\[\s*{re.escape(table)}\s*\]\s*(#.*)?$")
        starts = [number for number, line in enumerate(lines) if wanted.match(line)]
        if not starts:
            if value is None:
                return
            lines += ([""] if lines else []) + [f"[{table}]"]
            starts = [len(lines) - 1]
        start = starts[0] + 1
        end = next((n for n in range(start, len(lines)) if header.match(lines[n])), len(lines))
    else:
        end = next((n for n, line in enumerate(lines) if header.match(line)), len(lines))
    found = next((n for n in range(start, end) if key_line.match(lines[n])), None)
    new_line = None if value is None else f"{key} = {_toml_value(value)}"
    if found is not None:
        if new_line is None:
            del lines[found]
        else:
            lines[found] = new_line
    elif new_line is not None:
        insert_at = end
        while insert_at > start and not lines[insert_at - 1].strip():
            insert_at -= 1
        lines.insert(insert_at, new_line)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.replace(temporary, path)
    load_config_cached.cache_clear()


# A runtime worker cannot read config.toml (the sandbox hides the home directory): it is
# handed the caller's configuration, secrets removed (`adopt_config`).
_adopted: dict | None = None
SECRET_WORDS = {"key", "token", "secret", "password", "passwd", "cookie", "cookies", "credentials"}


@cache
def load_config_cached() -> dict:
    return _adopted if _adopted is not None else load_config()


def adopt_config(config: dict) -> None:
    """Use `config` instead of reading config.toml, from now on in this process."""
    global _adopted
    _adopted = config
    load_config_cached.cache_clear()


def without_secrets(value):
    """A copy of a configuration with every secret-named key left out: `api_key`,
    `access_token`, ... (`api_key_env`, a variable's name, and `max_tokens` stay)."""
    if isinstance(value, dict):
        return {key: without_secrets(item) for key, item in value.items()
                if key.endswith("_env") or not SECRET_WORDS & set(key.lower().replace("-", "_").split("_"))}
    if isinstance(value, list):
        return [without_secrets(item) for item in value]
    return value


# --- settings with precedence ------------------------------------------------


def setting(key: str, default, *, flag=None, env: str | None = None, table: str | None = None,
            kind=float, positive: bool = False, config: dict | None = None):
    """The one precedence rule for a setting: flag > environment > config > default.

    `key` is looked up in config.toml (in `[table]` if given); `env` names the environment
    variable that overrides it. A value from the environment or config must convert with
    `kind` and be non-negative (or, with `positive`, above zero): otherwise a usage error
    that names where the bad value came from.
    """
    if flag is not None:
        return flag
    raw = os.environ.get(env) if env else None
    origin = env or ""
    if raw is None:
        section = load_config_cached() if config is None else config
        if table:
            section = section.get(table) or {}
            section = section if isinstance(section, dict) else {}
        raw = section.get(key)
        origin = f"[{table}] {key} in config.toml" if table else f"{key} in config.toml"
    if raw is None:
        return default
    try:
        value = kind(raw)
    except (TypeError, ValueError):
        raise UsageError(f"{origin} must be a number (got {raw!r})") from None
    if not isinstance(value, (int, float)):
        return value  # a name (kind=str): nothing to bound
    if value < 0 or (positive and value == 0):
        raise UsageError(f"{origin} must be {'positive' if positive else 'not negative'} (got {raw!r})")
    return value


def on_off(raw) -> bool:
    """A setting's true or false, as TOML writes it or an environment variable spells it."""
    if isinstance(raw, bool):
        return raw
    word = str(raw).strip().lower()
    if word in ("1", "true", "yes", "on"):
        return True
    if word in ("0", "false", "no", "off"):
        return False
    raise ValueError(raw)


def prompt_cache_enabled() -> bool:
    """`prompt_cache` (LLMTOOLS_PROMPT_CACHE > config.toml > on): Anthropic cache breakpoints,
    local models' KV cache reuse. Off sends every prompt as if never seen."""
    try:
        return setting("prompt_cache", True, env="LLMTOOLS_PROMPT_CACHE", kind=on_off)
    except UsageError:
        raise UsageError("prompt_cache (LLMTOOLS_PROMPT_CACHE) must be true or false") from None


def aliases(config: dict) -> dict[str, str]:
    merged = dict(catalog.BUILTIN_ALIASES)
    merged.update({str(k): str(v) for k, v in (config.get("aliases") or {}).items()})
    return merged


def default_model(config: dict) -> tuple[str, str]:
    """(model name, where it came from) when no -m flag is given."""
    if os.environ.get("LLMTOOLS_MODEL"):
        return os.environ["LLMTOOLS_MODEL"], "LLMTOOLS_MODEL"
    if config.get("default_model"):
        return str(config["default_model"]), "default_model in config.toml"
    if os.environ.get("ANTHROPIC_API_KEY"):
        return catalog.DEFAULT_ANTHROPIC_MODEL, "ANTHROPIC_API_KEY is set"
    if os.environ.get("OPENAI_API_KEY"):
        return catalog.DEFAULT_OPENAI_MODEL, "OPENAI_API_KEY is set"
    return catalog.DEFAULT_LOCAL_MODEL, "no API key set"


def follow_aliases(name: str, config: dict) -> str:
    table = aliases(config)
    seen = [name]
    while name in table and table[name] != name:
        name = table[name]
        if name in seen:
            raise UsageError(f"alias loop: {' -> '.join(seen + [name])}")
        seen.append(name)
    return name


def _split_provider_prefix(name: str) -> tuple[str | None, str]:
    prefix, sep, rest = name.partition(":")
    found = providers.PROVIDERS.get(prefix) if sep else None
    if found is not None and found.explicit_prefix and rest:
        return prefix, rest
    return None, name


def resolve_model(name: str | None, config: dict | None = None) -> ModelSpec:
    """Turn what the user typed (or nothing) into a `ModelSpec`; unknown names are usage errors."""
    config = load_config_cached() if config is None else config
    if not name:
        name, _ = default_model(config)
    shown = name
    name = follow_aliases(name, config)
    common = {
        "timeout": setting("timeout", DEFAULT_MODEL_TIMEOUT, env="LLMTOOLS_TIMEOUT", config=config),
        "max_retries": int(setting("retries", DEFAULT_RETRIES, env="LLMTOOLS_RETRIES", config=config)),
        "retry_base_delay": setting("retry_base_delay", DEFAULT_RETRY_BASE_DELAY,
                                    env="LLMTOOLS_RETRY_BASE_DELAY", config=config),
    }
    if name == "echo":
        return ModelSpec(name="echo", provider="echo", model_id="echo", **common)
    if name.startswith("script:") and len(name) > len("script:"):
        # Scripted replies (llmtools.providers.script). The path is made absolute so that
        # the llm-exec runtime worker, another process with maybe another cwd, finds it too.
        path = os.path.abspath(os.path.expanduser(name[len("script:"):]))
        return ModelSpec(name=f"script:{path}", provider="script", model_id=path,
                         price_input=0.0, price_output=0.0, **common)

    entry = (config.get("models") or {}).get(name)
    if isinstance(entry, dict):
        return _configured_model(name, entry, common)

    provider, model_id = _split_provider_prefix(name)
    if provider == "local" or (provider is None and (model_id.endswith(".gguf") or os.sep in model_id)):
        return ModelSpec(name=name, provider="local", model_id=_local_model_id(model_id),
                         price_input=0.0, price_output=0.0, **common)
    provider = provider or catalog.provider_for_name(model_id)
    if provider is None:
        raise UsageError(f"unknown model {shown!r}; `llm models` lists the models and aliases you can use")
    known = catalog.known_model(model_id)
    provider_config = (config.get("providers") or {}).get(provider) or {}
    facts = providers.entry(provider)
    return ModelSpec(
        name=name,
        provider=provider,
        model_id=model_id,
        base_url=os.environ.get(facts.base_url_env or "") or provider_config.get("base_url"),
        api_key=os.environ.get(facts.key_env or "") or provider_config.get("api_key"),
        api_key_env=facts.key_env,
        context_size=known.context_size if known else None,
        price_input=known.price_input if known else None,
        price_output=known.price_output if known else None,
        price_cache_read=known.price_cache_read if known else None,
        price_cache_write=known.price_cache_write if known else None,
        **common,
    )


def _local_model_id(model_id: str) -> str:
    """A path made absolute (a daemon runs in another directory); a missing one is exit 2.

    Names without a slash (`smollm2`, `qwen.gguf`) are kept: they are looked up in the
    models directory when the model is first used (`llmtools.localmodels.locate`).
    """
    path = Path(model_id).expanduser()
    if os.sep in model_id or model_id.startswith("~") or path.is_file():
        if not path.exists():
            raise UsageError(f"model file not found: {model_id}")
        return str(path.resolve())
    return model_id


def _configured_model(name: str, entry: dict, common: dict) -> ModelSpec:
    provider = str(entry.get("provider", "openai"))
    if provider not in ("openai", "anthropic", "local", "script"):
        raise UsageError(f"[models.{name}] in config.toml: unknown provider {provider!r}")
    key_env = entry.get("api_key_env")
    api_key = entry.get("api_key") or (os.environ.get(str(key_env)) if key_env else None)
    if api_key is None and not key_env and not entry.get("base_url") and providers.key_env(provider):
        # A renamed hosted model (no server of its own) uses the provider's usual key.
        api_key = os.environ.get(providers.key_env(provider) or "")
    settings = dict(common)
    for key in ("timeout", "retry_base_delay"):
        if key in entry:
            settings[key] = float(entry[key])
    if "retries" in entry:
        settings["max_retries"] = int(entry["retries"])
    known = catalog.known_model(str(entry.get("model", name)))
    model_id = str(entry.get("model", entry.get("path", name)))
    if provider == "local":
        model_id = _local_model_id(model_id.removeprefix("local:"))
    elif provider == "script":  # scripted replies with a context size etc. (tests, demos)
        model_id = os.path.abspath(os.path.expanduser(model_id))
    return ModelSpec(
        name=name,
        provider=provider,
        model_id=model_id,
        base_url=entry.get("base_url") or os.environ.get(providers.entry(provider).base_url_env or "") or None,
        api_key=api_key,
        # A server of its own is never sent the provider's usual key, so it names no variable.
        api_key_env=str(key_env) if key_env else (None if entry.get("base_url") else providers.key_env(provider)),
        config_table=f"models.{name}",
        context_size=entry.get("context_size") or (known.context_size if known else None),
        price_input=entry.get("price_input", known.price_input if known else None),
        price_output=entry.get("price_output", known.price_output if known else None),
        price_cache_read=entry.get("price_cache_read", known.price_cache_read if known else None),
        price_cache_write=entry.get("price_cache_write", known.price_cache_write if known else None),
        options={k: v for k, v in entry.items() if k not in _MODEL_ENTRY_KEYS},
        **settings,
    )


_MODEL_ENTRY_KEYS = {
    "provider", "model", "path", "base_url", "api_key", "api_key_env", "context_size",
    "price_input", "price_output", "price_cache_read", "price_cache_write", "timeout", "retries", "retry_base_delay",
}
