"""Offline rankers that need nothing but tiktoken and numpy (and faiss for vectors).

Both work on "terms": cl100k token ids folded to lower case with surrounding spaces
dropped (" Paris", "paris" and "PARIS" are one term), with punctuation and whitespace
tokens left out. Reusing the chunker's token ids makes them as fast as chunking itself.

- `BM25Ranker`: Okapi BM25 over those terms, computed exactly with numpy; only the
  query's terms are ever counted, so ranking 10 MB costs one pass over its ids.
- `HashedRanker`: each chunk a TF-IDF vector of hashed terms (`DIMENSIONS` buckets),
  searched with faiss by inner product.

`scripts/bench_retrieval.py` measures both (and the model embedders) on planted facts.
"""

from __future__ import annotations

import threading
from functools import cache
from typing import Any

from llmtools.mapping.chunking import Chunk

BM25_K1 = 1.2
BM25_B = 0.75
# Unigrams only, in 4096 buckets: bigrams, or 2048 buckets, lost a third of the recall to
# collisions in scripts/bench_retrieval.py. Costs 16 KiB per chunk (160 MB for 10 MB of text).
DIMENSIONS = 4096


_building = threading.Lock()


def term_table() -> Any:
    """numpy array: token id -> term id (0 for tokens that carry no word)."""
    with _building:  # built once, even when llm-map's warm-up thread is already at it
        return _term_table()


@cache
def _term_table() -> Any:
    from llmtools.mapping import tokens

    return tokens.cached_table("terms", _build_term_table)


def _build_term_table() -> Any:
    import numpy as np

    from llmtools.mapping import tokens

    enc = tokens.encoding()
    table = np.zeros(enc.n_vocab, dtype=np.int64)
    terms: dict[str, int] = {}
    for piece, token in tokens.pieces().items():
        word = piece.decode("utf-8", "ignore").strip().lower()
        if word and any(character.isalnum() for character in word):
            table[token] = terms.setdefault(word, len(terms) + 1)
    return table


def query_terms(text: str) -> Any:
    import numpy as np

    from llmtools.mapping import tokens

    ids = tokens.encode_many([text])[0]
    terms = term_table()[ids]
    return np.unique(terms[terms > 0])


def _corpus(chunks: list[Chunk]) -> tuple[Any, Any, Any]:
    """(term ids of all chunks end to end, the chunk each belongs to, each chunk's length)."""
    import numpy as np

    lengths = np.array([chunk.tokens for chunk in chunks], dtype=np.int64)
    ids = np.concatenate([chunk.token_ids for chunk in chunks]) if chunks else np.zeros(0, np.int64)
    owner = np.repeat(np.arange(len(chunks)), lengths)
    return term_table()[ids], owner, lengths


class BM25Ranker:
    name = "bm25"

    def scores(self, chunks: list[Chunk], query: str) -> Any:
        """One BM25 score per chunk (numpy float64)."""
        import numpy as np

        terms, owner, lengths = _corpus(chunks)
        wanted = query_terms(query)
        scores = np.zeros(len(chunks))
        if not len(wanted) or not len(chunks):
            return scores
        hit = np.isin(terms, wanted)
        hit_terms, hit_owner = terms[hit], owner[hit]
        which = np.searchsorted(wanted, hit_terms)
        counts = np.bincount(hit_owner * len(wanted) + which,
                             minlength=len(chunks) * len(wanted)).reshape(len(chunks), len(wanted))
        frequency = (counts > 0).sum(axis=0)
        idf = np.log(1 + (len(chunks) - frequency + 0.5) / (frequency + 0.5))
        norm = BM25_K1 * (1 - BM25_B + BM25_B * lengths / max(lengths.mean(), 1))
        saturated = counts * (BM25_K1 + 1) / (counts + norm[:, None])
        return saturated @ idf

    def rank(self, chunks: list[Chunk], query: str) -> list[int]:
        """Chunk positions, best first (ties in stack order)."""
        import numpy as np

        scores = self.scores(chunks, query)
        return [int(i) for i in np.argsort(-scores, kind="stable")]


def _hashed_features(terms: Any) -> Any:
    """Bucket of each term of a sequence (0-terms, punctuation and spaces, dropped)."""
    return terms[terms > 0] % DIMENSIONS


def hashed_vectors(chunks: list[Chunk]) -> Any:
    """(n, DIMENSIONS) float32 rows of log term frequency, L2-normalised, before IDF."""
    import numpy as np

    table = term_table()
    rows = np.zeros((len(chunks), DIMENSIONS), dtype=np.float32)
    for row, chunk in enumerate(chunks):
        rows[row] = np.bincount(_hashed_features(table[chunk.token_ids]), minlength=DIMENSIONS)
    return np.log1p(rows, out=rows)


class HashedRanker:
    name = "hashed"

    def rank(self, chunks: list[Chunk], query: str) -> list[int]:
        import numpy as np

        from llmtools.mapping import tokens
        from llmtools.mapping.vectors import search

        if not chunks:
            return []
        rows = hashed_vectors(chunks)
        frequency = (rows > 0).sum(axis=0)
        idf = np.log(1 + (len(chunks) - frequency + 0.5) / (frequency + 0.5)).astype(np.float32)
        rows *= idf
        query_ids = term_table()[tokens.encode_many([query])[0]]
        wanted = np.zeros(DIMENSIONS, dtype=np.float32)
        np.add.at(wanted, _hashed_features(query_ids), 1.0)
        return search(rows, np.log1p(wanted) * idf)
