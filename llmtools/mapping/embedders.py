"""Rankers: which chunks answer a query best. One name picks one (`--embedder`, `[map] embedder`).

    bm25                 lexical Okapi BM25 (the offline default; see README's table)
    hashed               hashed TF-IDF vectors, searched with faiss
    gguf:PATH | local:NAME   a GGUF model's mean-pooled embeddings (llama-cpp-python), faiss
    openai:MODEL | NAME  an embeddings API: OpenAI's, or a `[models.NAME]` server's /v1/embeddings
    A+B                  reciprocal-rank fusion of two of the above (`bm25+local:smollm2`)

Every ranker has `rank(chunks, query) -> chunk positions, best first`. The ones backed
by a model are built by `llmtools.services.embedder`, which decides where they run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from llmtools.errors import UsageError
from llmtools.mapping.chunking import Chunk

DEFAULT_EMBEDDER = "bm25"
# Reciprocal-rank fusion's damping constant, the value from Cormack et al. (2009).
RRF_K = 60
EMBED_BATCH = 64


class Ranker(Protocol):
    name: str

    def rank(self, chunks: list[Chunk], query: str) -> list[int]: ...


Embed = Callable[[list[str]], Any]  # texts -> (n, d) float32 array


class VectorRanker:
    """Rank by cosine similarity of embeddings from `embed`, searched with faiss."""

    def __init__(self, name: str, embed: Embed) -> None:
        self.name = name
        self.embed = embed

    def rank(self, chunks: list[Chunk], query: str) -> list[int]:
        import numpy as np

        from llmtools.mapping.vectors import search

        if not chunks:
            return []
        rows = np.concatenate([self.embed([chunk.text for chunk in chunks[start:start + EMBED_BATCH]])
                               for start in range(0, len(chunks), EMBED_BATCH)])
        return search(rows, self.embed([query])[0])


class FusedRanker:
    """Reciprocal-rank fusion: a chunk ranked well by either ranker comes out near the top."""

    def __init__(self, rankers: list[Ranker]) -> None:
        self.rankers = rankers
        self.name = "+".join(ranker.name for ranker in rankers)

    def rank(self, chunks: list[Chunk], query: str) -> list[int]:
        scores = [0.0] * len(chunks)
        for ranker in self.rankers:
            for place, position in enumerate(ranker.rank(chunks, query)):
                scores[position] += 1.0 / (RRF_K + place + 1)
        return sorted(range(len(chunks)), key=lambda position: -scores[position])


def gguf_embed(path: str) -> Embed:
    """Mean-pooled embeddings of a GGUF model, loaded once (in this process)."""
    import numpy as np
    from llama_cpp import Llama

    model = Llama(model_path=path, embedding=True, n_ctx=512, n_batch=512, verbose=False,
                  n_threads=1)

    def embed(texts: list[str]) -> Any:
        vectors = []
        for text in texts:
            vector = np.asarray(model.embed(text, truncate=True), dtype=np.float32)
            vectors.append(vector.mean(axis=0) if vector.ndim == 2 else vector)
        return np.vstack(vectors)

    return embed


def api_embed(model_name: str) -> Embed:
    """Embeddings from an OpenAI-compatible /v1/embeddings endpoint, through the official SDK."""
    import numpy as np

    from llmtools.config import resolve_model

    spec = resolve_model(model_name)
    if spec.provider != "openai":
        raise UsageError(f"embedder {model_name}: only OpenAI and OpenAI-compatible servers have an "
                         f"embeddings API here (model {spec.name} is {spec.provider})")
    import openai

    client = openai.OpenAI(api_key=spec.api_key or "none", base_url=spec.base_url, timeout=spec.timeout,
                           max_retries=spec.max_retries)

    def embed(texts: list[str]) -> Any:
        response = client.embeddings.create(model=spec.model_id, input=texts)
        ordered = sorted(response.data, key=lambda item: item.index)
        return np.asarray([item.embedding for item in ordered], dtype=np.float32)

    return embed


def local_model_path(name: str) -> str:
    from llmtools.config import resolve_model
    from llmtools.localmodels import ensure_model_file

    spec = resolve_model(name if ":" in name or name.endswith(".gguf") else f"local:{name}")
    return str(ensure_model_file(spec.model_id, spec.name))


def make_ranker(name: str) -> Ranker:
    """The ranker `name` means, built in this process."""
    from llmtools.mapping.lexical import BM25Ranker, HashedRanker

    if "+" in name:
        return FusedRanker([make_ranker(part) for part in name.split("+") if part])
    if name == "bm25":
        return BM25Ranker()
    if name == "hashed":
        return HashedRanker()
    if name.startswith("gguf:"):
        return VectorRanker(name, gguf_embed(str(local_model_path(name[len("gguf:"):]))))
    if name.startswith("local:") or name.endswith(".gguf"):
        return VectorRanker(name, gguf_embed(local_model_path(name)))
    return VectorRanker(name, api_embed(name))
