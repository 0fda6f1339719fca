"""The message stack: the one interchange format of the suite (see llmtools-stack(5)).

A stack is JSON Lines, one message per line:

    {"role": "system"|"user"|"assistant", "content": <str | [part, ...]>, "meta": {...}}

with parts `{"type": "text", "text": ...}` and
`{"type": "image", "media_type": "image/png", "data": <base64>}`.

This module is the format only: building, validating, parsing and writing messages.
Telling a stack from plain text, an image or a PDF is `llmtools.detect`'s job, and
turning whatever arrived into messages is `llmtools.inputs`'s. A stack that goes wrong
part-way is an error naming the line (exit 65).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from collections.abc import Iterable, Iterator
from typing import IO

from llmtools.errors import InputError

ROLES = ("system", "user", "assistant")


def message(role: str, content: str | list, **meta: object) -> dict:
    """Build a message; meta keys with None values are left out."""
    result: dict = {"role": role, "content": content}
    kept = {key: value for key, value in meta.items() if value is not None}
    if kept:
        result["meta"] = kept
    return result


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def image_message(data: bytes, media_type: str, source: str | None = None) -> dict:
    part = {"type": "image", "media_type": media_type, "data": base64.b64encode(data).decode("ascii")}
    return message("user", [part], source=source)


def content_text(content: str | list) -> str:
    """The text of a message's content, image parts left out (text parts joined by newlines)."""
    if isinstance(content, str):
        return content
    return "\n".join(part.get("text", "") for part in content if part.get("type") == "text")


def text_of(msg: dict) -> str:
    """The text of a message, image parts left out."""
    return content_text(msg["content"])


# --- validation ---------------------------------------------------------------


def _check_part(part: object) -> str | None:
    if not isinstance(part, dict):
        return "a content part must be an object"
    kind = part.get("type")
    if kind == "text":
        if not isinstance(part.get("text"), str):
            return 'a text part needs a string "text"'
        return None
    if kind == "image":
        if not isinstance(part.get("media_type"), str) or not part["media_type"].startswith("image/"):
            return 'an image part needs "media_type" such as "image/png"'
        data = part.get("data")
        if not isinstance(data, str):
            return 'an image part needs base64 "data"'
        try:
            base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            return "an image part's data is not valid base64"
        return None
    return f'unknown content part type {kind!r} (expected "text" or "image")'


def validation_error(msg: object) -> str | None:
    """Why `msg` is not a valid message, or None if it is."""
    if not isinstance(msg, dict):
        return "a message must be a JSON object"
    role = msg.get("role")
    if role not in ROLES:
        return f'"role" must be one of {", ".join(ROLES)} (got {role!r})'
    if "content" not in msg:
        return 'missing "content"'
    content = msg["content"]
    if isinstance(content, list):
        for part in content:
            problem = _check_part(part)
            if problem:
                return problem
    elif not isinstance(content, str):
        return '"content" must be a string or a list of parts'
    if "meta" in msg and not isinstance(msg["meta"], dict):
        return '"meta" must be an object'
    return None


def validate(msg: object, where: str) -> dict:
    problem = validation_error(msg)
    if problem:
        raise InputError(f"{where}: {problem}")
    return msg  # type: ignore[return-value]


# --- reading ------------------------------------------------------------------


def split_lines(text: str) -> list[str]:
    """The lines of a stack. Only "\\n" ends a line: str.splitlines() would also split on
    U+2028 and friends, which json.dumps(ensure_ascii=False) leaves raw inside strings."""
    return list(iter_lines(text))


def iter_lines(text: str) -> Iterator[str]:
    """split_lines() one line at a time: a 100 MB stack is not copied into a list first."""
    start = 0
    while start <= len(text):
        end = text.find("\n", start)
        if end == -1:
            end = len(text)
        yield text[start:end].removesuffix("\r")
        start = end + 1


def parse_stack(text: str, source: str = "stdin") -> list[dict]:
    """Parse JSONL text that is known to be a stack; errors name the line."""
    messages = []
    for number, line in enumerate(iter_lines(text), start=1):
        if not line.strip():
            continue
        try:
            msg = json.loads(line)
        except ValueError as error:  # JSONDecodeError, or a number too long to convert
            reason = error.msg if isinstance(error, json.JSONDecodeError) else error
            raise InputError(f"{source} line {number}: not valid JSON ({reason})") from None
        except RecursionError:
            raise InputError(f"{source} line {number}: not valid JSON (nested too deeply)") from None
        if _SURROGATE_ESCAPE.search(line):
            _check_no_lone_surrogates(msg, f"{source} line {number}")
        messages.append(validate(msg, f"{source} line {number}"))
    return messages


# A `\uD800`-`\uDFFF` escape: JSON lets one stand alone, but such a string has no UTF-8 form,
# so it could be neither logged nor written out again. Only lines that have one are checked.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _check_no_lone_surrogates(msg: object, where: str) -> None:
    try:
        json.dumps(msg, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise InputError(f"{where}: a \\u escape names half of a surrogate pair "
                         "(not a character; text must be valid Unicode)") from None


def decode_text(data: bytes, source: str) -> str:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InputError(
            f"{source} is not UTF-8 text (byte 0x{data[error.start]:02x} at offset {error.start}); "
            "convert it first, e.g. with iconv"
        ) from None
    return text.removeprefix("\ufeff")


def read_stack(stream: IO[bytes], source: str = "stdin") -> list[dict]:
    """Deprecated: use `llmtools.inputs.read_messages`. Kept only while cli/output.py
    still reads stdin through here; it goes when that module calls inputs directly."""
    from llmtools.inputs import read_messages

    return read_messages(stream.read(), source)


# --- writing ------------------------------------------------------------------


def dumps(msg: dict) -> str:
    return json.dumps(msg, ensure_ascii=False)


def write_stack(messages: Iterable[dict], stream: IO[str]) -> None:
    """Write messages one per line, flushing each so a pipeline sees it at once."""
    for msg in messages:
        stream.write(dumps(msg) + "\n")
        stream.flush()
