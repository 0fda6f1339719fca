"""Cutting a stack's messages into overlapping chunks of a fixed number of tokens.

Each message is chunked on its own, so several documents (`llm-fetch a b | llm-map`)
never share a chunk and each chunk knows where it came from. Chunk boundaries are token
offsets mapped back to byte offsets of the message's UTF-8 text (no decoding of token
slices), which keeps chunking at tiktoken's own speed.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from llmtools.stack import content_text

DEFAULT_CHUNK_TOKENS = 256
# Each chunk repeats the end of the one before, so a fact that straddles a boundary is
# whole in at least one of them.
OVERLAP_FRACTION = 1 / 8


@dataclasses.dataclass
class Chunk:
    index: int  # position among all chunks, in stack order
    message_index: int  # which message of the stack it came from
    part: int  # its position within that message
    text: str
    token_ids: Any = dataclasses.field(repr=False, default=None)  # numpy array, for ranking
    source: str | None = None

    @property
    def tokens(self) -> int:
        return 0 if self.token_ids is None else len(self.token_ids)

    def as_message(self, tool: str = "llm-map") -> dict:
        meta: dict = {"tool": tool, "chunk": self.index, "message": self.message_index, "part": self.part}
        if self.source:
            meta["source"] = self.source
        return {"role": "user", "content": self.text, "meta": meta}


def overlap_for(chunk_tokens: int) -> int:
    return int(chunk_tokens * OVERLAP_FRACTION)


def _windows(length: int, size: int, overlap: int) -> list[tuple[int, int]]:
    if length <= size:
        return [(0, length)] if length else []
    step = max(1, size - overlap)
    starts = list(range(0, length - overlap, step))
    return [(start, min(start + size, length)) for start in starts]


def chunk_messages(messages: list[dict], chunk_tokens: int = DEFAULT_CHUNK_TOKENS,
                   overlap: int | None = None) -> list[Chunk]:
    """The text of every message, as chunks of at most `chunk_tokens` tokens, in stack order."""
    import numpy as np

    from llmtools.mapping import tokens

    overlap = overlap_for(chunk_tokens) if overlap is None else min(overlap, chunk_tokens - 1)
    texts = [content_text(message["content"]) for message in messages]
    byte_lengths = tokens.byte_lengths()
    chunks: list[Chunk] = []
    for message_index, (message, text, ids) in enumerate(zip(messages, texts, tokens.encode_many(texts),
                                                             strict=True)):
        if not text.strip():
            continue
        data = text.encode("utf-8")
        offsets = np.concatenate(([0], np.cumsum(byte_lengths[ids])))
        source = (message.get("meta") or {}).get("source")
        for part, (start, end) in enumerate(_windows(len(ids), chunk_tokens, overlap)):
            piece = data[offsets[start]:offsets[end]].decode("utf-8", "ignore")
            chunks.append(Chunk(len(chunks), message_index, part, piece, ids[start:end],
                                str(source) if source else None))
    return chunks
