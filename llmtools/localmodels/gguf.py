"""Reading a GGUF file's header: refusing what is not GGUF, and the model's trained context."""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from llmtools.errors import InputError, UsageError

GGUF_MAGIC = b"GGUF"

# GGUF value types: struct format of the scalar ones, 8 = string, 9 = array.
_GGUF_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?",
                 10: "<Q", 11: "<q", 12: "<d"}
_GGUF_STRING, _GGUF_ARRAY = 8, 9
_MAX_STRING = 1 << 26


class _Reader:
    def __init__(self, stream: IO[bytes], path: Path) -> None:
        self.stream = stream
        self.path = path

    def take(self, size: int) -> bytes:
        data = self.stream.read(size)
        if len(data) != size:
            raise InputError(f"{self.path}: not a usable GGUF file (the header is cut short)")
        return data

    def unpack(self, fmt: str) -> Any:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def string(self) -> str:
        length = self.unpack("<Q")
        if length > _MAX_STRING:
            raise InputError(f"{self.path}: not a usable GGUF file (a header string of {length} bytes)")
        return self.take(length).decode("utf-8", "replace")

    def value(self, kind: int, keep: bool = True) -> Any:
        if kind in _GGUF_SCALARS:
            return self.unpack(_GGUF_SCALARS[kind])
        if kind == _GGUF_STRING:
            return self.string()
        if kind == _GGUF_ARRAY:
            item_kind, count = self.unpack("<I"), self.unpack("<Q")
            if item_kind in _GGUF_SCALARS and item_kind != _GGUF_STRING:
                size = struct.calcsize(_GGUF_SCALARS[item_kind]) * count
                self.stream.seek(size, os.SEEK_CUR)  # vocabularies: skip, never keep
                return None
            items = [self.value(item_kind, keep=False) for _ in range(count)]
            return items if keep else None
        raise InputError(f"{self.path}: not a usable GGUF file (unknown value type {kind})")


def check_gguf(path: Path) -> None:
    """Refuse (exit 65) a file that is not GGUF, before llama.cpp gets to see it."""
    try:
        with open(path, "rb") as stream:
            magic = stream.read(4)
    except IsADirectoryError:
        raise UsageError(f"model path is a directory, not a .gguf file: {path}") from None
    except FileNotFoundError:
        raise UsageError(f"model file not found: {path}") from None
    except OSError as error:
        raise InputError(f"{path}: {error.strerror}") from None
    if magic != GGUF_MAGIC:
        raise InputError(f"{path}: not a GGUF model file (llama.cpp models are .gguf files "
                         f"starting with 'GGUF')")


def gguf_metadata(path: Path, wanted: Callable[[dict], bool] | None = None) -> dict[str, Any]:
    """The key/value header of a GGUF file (token lists skipped), up to where `wanted` is met."""
    check_gguf(path)
    with open(path, "rb") as stream:
        reader = _Reader(stream, path)
        reader.take(4)
        version = reader.unpack("<I")
        if version < 2:
            raise InputError(f"{path}: GGUF version {version} is too old for llama.cpp")
        reader.unpack("<Q")  # tensor count
        count = reader.unpack("<Q")
        metadata: dict[str, Any] = {"GGUF.version": version}
        for _ in range(count):
            key = reader.string()
            kind = reader.unpack("<I")
            big = key.startswith("tokenizer.ggml.")
            metadata[key] = reader.value(kind, keep=not big)
            if wanted is not None and wanted(metadata):
                break
    return metadata


def context_length(path: Path) -> int | None:
    """The context the model was trained with (`<arch>.context_length`), if the header says."""

    def found(metadata: dict) -> bool:
        arch = metadata.get("general.architecture")
        return arch is not None and f"{arch}.context_length" in metadata

    metadata = gguf_metadata(path, found)
    arch = metadata.get("general.architecture")
    value = metadata.get(f"{arch}.context_length")
    return int(value) if isinstance(value, int) else None
