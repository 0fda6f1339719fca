"""The shape of config.toml, checked once when the file is loaded.

A value of the wrong type is an error naming the file, the key and the type wanted, in
one line (exit 65), before any code trips over it: `aliases = "x"` or `context_size =
"big"` would otherwise surface as a crash far away (in the daemon, in a worker). A key
nobody reads is most likely a typo: it gets a warning naming the nearest known key
(`modle` → `model`) and is otherwise ignored, so an older llmtools can read a newer file.

Adding a setting means adding its key here, with its kind.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from pathlib import Path

from llmtools.errors import InputError


@dataclasses.dataclass(frozen=True)
class Kind:
    """A kind of value: `name` as the error says it ("a positive number"), `accepts` the test."""

    name: str
    accepts: Callable[[object], bool]


def _is_number(value: object) -> bool:
    # TOML booleans are Python bools, which are ints: `timeout = true` is not a number.
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_integer(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


STRING = Kind("a string", lambda value: isinstance(value, str))
NON_EMPTY_STRING = Kind("a non-empty string", lambda value: isinstance(value, str) and bool(value.strip()))
POSITIVE_NUMBER = Kind("a number above 0", lambda value: _is_number(value) and value > 0)  # type: ignore[operator]
NON_NEGATIVE_NUMBER = Kind("a number, 0 or more", lambda value: _is_number(value) and value >= 0)  # type: ignore[operator]
POSITIVE_INTEGER = Kind("a whole number above 0", lambda value: _is_integer(value) and value > 0)  # type: ignore[operator]
NON_NEGATIVE_INTEGER = Kind("a whole number, 0 or more", lambda value: _is_integer(value) and value >= 0)  # type: ignore[operator]
STRING_LIST = Kind("a list of strings", lambda value: isinstance(value, list)
                   and all(isinstance(item, str) for item in value))
PROVIDER_NAME = Kind('one of "openai", "anthropic", "local", "script"',
                     lambda value: value in ("openai", "anthropic", "local", "script"))
BOOLEAN = Kind("true or false", lambda value: isinstance(value, bool))


@dataclasses.dataclass(frozen=True)
class Table:
    """A TOML table: its known keys; `each` for tables whose keys are names the user picks
    ([aliases], [models]); `open` when other keys are passed on as they are (a model's
    backend options such as n_threads)."""

    keys: dict[str, Kind | Table] = dataclasses.field(default_factory=dict)
    each: Kind | Table | None = None
    open: bool = False


PROVIDER = Table({"api_key": STRING, "base_url": STRING})

MODEL = Table({
    "provider": PROVIDER_NAME, "model": NON_EMPTY_STRING, "path": NON_EMPTY_STRING,
    "base_url": NON_EMPTY_STRING, "api_key": STRING, "api_key_env": NON_EMPTY_STRING,
    "context_size": POSITIVE_INTEGER, "price_input": NON_NEGATIVE_NUMBER,
    "price_output": NON_NEGATIVE_NUMBER, "timeout": POSITIVE_NUMBER, "retries": NON_NEGATIVE_INTEGER,
    "retry_base_delay": NON_NEGATIVE_NUMBER, "max_tokens": POSITIVE_INTEGER,
    "price_cache_read": NON_NEGATIVE_NUMBER, "price_cache_write": NON_NEGATIVE_NUMBER,
    "response_format": NON_EMPTY_STRING,
}, open=True)

EXEC = Table({
    "helpers": STRING_LIST, "timeout": POSITIVE_NUMBER, "max_steps": POSITIVE_INTEGER,
    "max_errors": POSITIVE_INTEGER, "memory_mb": POSITIVE_INTEGER, "max_output": POSITIVE_INTEGER,
    "helper_model": NON_EMPTY_STRING, "sandbox": NON_EMPTY_STRING, "allow_paths": STRING_LIST,
    "allow_net": BOOLEAN, "cpu_seconds": POSITIVE_INTEGER, "max_processes": POSITIVE_INTEGER,
    "max_open_files": POSITIVE_INTEGER, "max_file_mb": POSITIVE_INTEGER,
})

MAP = Table({"jobs": POSITIVE_INTEGER, "embedder": NON_EMPTY_STRING, "batch_poll_interval": POSITIVE_NUMBER})

FETCH = Table({"timeout": POSITIVE_NUMBER})

SCHEMA = Table({
    "default_model": NON_EMPTY_STRING,
    "timeout": POSITIVE_NUMBER,
    "retries": NON_NEGATIVE_INTEGER,
    "retry_base_delay": NON_NEGATIVE_NUMBER,
    "daemon_idle_timeout": NON_NEGATIVE_NUMBER,  # 0: never exit when idle
    "prompt_cache": BOOLEAN,
    "aliases": Table(each=NON_EMPTY_STRING),
    "providers": Table({"anthropic": PROVIDER, "openai": PROVIDER}),
    "models": Table(each=MODEL),
    "exec": EXEC,
    "map": MAP,
    "fetch": FETCH,
})

_warned: set[str] = set()


def check(config: dict, path: Path, *, warn: Callable[[str], None] | None = None) -> dict:
    """`config` as parsed from `path` if it fits SCHEMA; else InputError (exit 65) naming the
    file, the key and the kind of value wanted. Unknown keys are warned about (once each
    per process) through `warn`."""
    for message in _unknown_keys(config, SCHEMA, ()):
        if message not in _warned and warn is not None:
            _warned.add(message)
            warn(f"{path}: {message}")
    problem = _problem(config, SCHEMA, ())
    if problem:
        raise InputError(f"{path}: {problem}")
    return config


def _where(keys: tuple[str, ...]) -> str:
    """How a key is written in the file: `timeout`, `[exec] timeout`, `[models.qwen] model`."""
    if len(keys) == 1:
        return keys[0]
    table = ".".join(_bare(key) for key in keys[:-1])
    return f"[{table}] {_bare(keys[-1])}"


def _bare(key: str) -> str:
    if key and all(char.isalnum() or char in "-_" for char in key):
        return key
    return '"' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _problem(value: object, kind: Kind | Table, keys: tuple[str, ...]) -> str | None:
    if isinstance(kind, Kind):
        if kind.accepts(value):
            return None
        return f"{_where(keys)} must be {kind.name} (got {_shown(value)})"
    if not isinstance(value, dict):
        what = f"[{'.'.join(_bare(key) for key in keys)}]" if keys else "the file"
        return f"{what} must be a table (got {_shown(value)})"
    for key, item in value.items():
        inner = kind.keys.get(key) or kind.each
        if inner is not None:
            problem = _problem(item, inner, (*keys, key))
            if problem:
                return problem
    return None


def _unknown_keys(value: object, kind: Kind | Table, keys: tuple[str, ...]) -> list[str]:
    if not (isinstance(kind, Table) and isinstance(value, dict)):
        return []
    found = []
    for key, item in value.items():
        inner = kind.keys.get(key) or kind.each
        if inner is not None:
            found.extend(_unknown_keys(item, inner, (*keys, key)))
        else:
            import difflib  # only when a key is unknown: loading a good config stays cheap

            nearest = difflib.get_close_matches(key, list(kind.keys), n=1, cutoff=0.6)
            if nearest:
                ignored = "" if kind.open else " (ignored)"
                found.append(f"unknown key {_where((*keys, key))}{ignored}; did you mean {nearest[0]!r}?")
            elif not kind.open:  # in an open table, a key like no known one is a backend option
                found.append(f"unknown key {_where((*keys, key))} (ignored)")
    return found


def _shown(value: object) -> str:
    kinds = {dict: "a table", list: "a list", bool: "a boolean"}
    for python_type, name in kinds.items():
        if isinstance(value, python_type):
            return name if python_type is not bool else f"{name}, {str(value).lower()}"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
