"""What llm-exec was given (stdin, -p files and URLs) as data for the model's code.

A 50 MB CSV piped into llm-exec should be read by code, not pasted whole into the context
window. Each input message with text becomes a document: in the runtime, `documents[i]`
(a str with `.text` and `.source`); in the prompt, the whole text when it is short, else
a preview (its start, its size, and where the rest is). One note after the inputs tells
the model that `documents` exists.

The documents reach the runtime with the first block's context (`HelperContext`), once;
the worker keeps them in the namespace, so later blocks do not carry them again.
"""

from __future__ import annotations

import dataclasses

from llmtools import stack

# A document up to this many characters goes into the prompt whole; a longer one as a preview.
INLINE_MAX_CHARS = 20_000
PREVIEW_CHARS = 2_000


@dataclasses.dataclass
class Inputs:
    messages: list[dict]  # the stack to send, large inputs replaced by previews
    documents: list[dict]  # {"text", "source"} for the runtime, in order


def _preview(text: str, index: int) -> str:
    lines = text.count("\n") + (0 if text.endswith("\n") else 1)
    return (f"{text[:PREVIEW_CHARS]}\n[... preview only: {len(text):,} characters and {lines:,} lines "
            f"in all. The whole text is `documents[{index}].text` in the runtime: read it with code.]")


def split_inputs(messages: list[dict], is_input) -> Inputs:
    """`messages` with each input (`is_input(message)`: from stdin or -p) that holds text
    made a document; the long ones replaced by previews. Image-only inputs stay as they are."""
    sent: list[dict] = []
    documents: list[dict] = []
    after_inputs = 0
    for message in messages:
        text = stack.text_of(message) if message["role"] == "user" and is_input(message) else ""
        if text:
            index = len(documents)
            documents.append({"text": text, "source": (message.get("meta") or {}).get("source") or "stdin"})
            if len(text) > INLINE_MAX_CHARS and isinstance(message["content"], str):
                message = {**message, "content": _preview(text, index)}
            after_inputs = len(sent) + 1
        sent.append(message)
    if documents:
        listing = ", ".join(f"{index}: {document['source']}" for index, document in enumerate(documents))
        sent.insert(after_inputs, stack.message(
            "user", f"(The input above is also in the runtime as `documents`, a list of str with "
                    f".text and .source: {listing}.)"))
    return Inputs(sent, documents)
