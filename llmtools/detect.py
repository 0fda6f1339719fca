"""What a run of bytes is, by its content: a stack, text, an image, a PDF, or binary.

The one place that sniffs bytes. stdin, `-p` files (both in `llmtools.inputs`), fetched
bodies and the runtime helpers ask here, so a PNG or a PDF is recognised the same way
whichever door it comes in by. Turning what was found into messages is the caller's
business; this module only looks, and imports nothing heavier than `llmtools.stack`.
"""

from __future__ import annotations

import json
import re

from llmtools.stack import ROLES, iter_lines

# Magic numbers of the image formats every provider here accepts.
IMAGE_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)
PDF_SIGNATURE = b"%PDF-"
# PDF readers (Acrobat, poppler) accept a header anywhere in the first KiB, after junk
# such as a mail gateway's prefix.
PDF_HEADER_WINDOW = 1024
# A NUL byte this early is what `grep` and `git` take for "binary": no text encoding
# we read puts one there.
BINARY_WINDOW = 8192

# What `sniff` answers besides an image's own media type.
EMPTY = ""  # nothing, or only whitespace
PDF = "application/pdf"
BINARY = "application/octet-stream"  # none of the above, with NUL bytes: not readable as text
TEXT = "text/plain"  # everything else; it may still turn out not to be UTF-8


def image_media_type(data: bytes) -> str | None:
    """"image/png", "image/jpeg", "image/gif" or "image/webp" by the magic number, else None."""
    for signature, media_type in IMAGE_SIGNATURES:
        if data.startswith(signature):
            return media_type
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def is_pdf(data: bytes, *, strict: bool = True) -> bool:
    """Whether `data` is a PDF: it starts with `%PDF-`, or with `strict=False` has that
    header somewhere in its first KiB.

    Sniffing unknown input is strict, so a text that mentions %PDF- stays text; code that
    was told it has a PDF is lenient, as PDF readers are.
    """
    if data.startswith(PDF_SIGNATURE):
        return True
    return not strict and PDF_SIGNATURE in data[:PDF_HEADER_WINDOW]


def sniff(data: bytes) -> str:
    """The media type `data` has by its content: an image's ("image/png", ...), PDF, BINARY,
    TEXT, or EMPTY for nothing but whitespace."""
    if not data.strip():
        return EMPTY
    media_type = image_media_type(data)
    if media_type:
        return media_type
    if is_pdf(data):
        return PDF
    if b"\x00" in data[:BINARY_WINDOW]:
        return BINARY
    return TEXT


def is_image(media_type: str) -> bool:
    return media_type.startswith("image/")


_OPENS_LIKE_A_MESSAGE = re.compile(r'\s*\{\s*"(role|content|meta)"\s*:')


def looks_like_stack(text: str) -> bool:
    """Whether decoded text is a stack: its first non-blank line parses as a JSON object
    with a valid "role" and a "content".

    Anything else (prose, code, JSON that is not a message) is plain text: a user piping
    `jq` output into `llm` means it as content, not as a stack.
    """
    for line in iter_lines(text):  # lazily: stdin may be one 100 MB message
        if not line.strip():
            continue
        if not line.lstrip().startswith("{"):
            return False
        try:
            first = json.loads(line)
        except ValueError:
            return False
        except RecursionError:
            # Nested past what the parser can follow: a stack if it opens like a message,
            # so that reading it fails with its line number (exit 65), else plain text.
            return bool(_OPENS_LIKE_A_MESSAGE.match(line))
        return isinstance(first, dict) and first.get("role") in ROLES and "content" in first
    return False
