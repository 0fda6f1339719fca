"""What a command is given, as messages: stdin's bytes, and `-p/--path` values (files,
directories, globs with `!` exclusions, URLs).

stdin may carry a stack, plain text (one user message), an image (one image message) or
a PDF (its text); which one is told by content (`llmtools.detect`), never by a flag.

    -p notes.md              one file
    -p src/                  every text file below src/ (hidden and build dirs skipped)
    -p '**/*.py' '!**/__init__.py'    a glob, minus what the `!` patterns match
    -p https://example.com/  the page, fetched as llm-fetch does
    -p scan.png -p paper.pdf an image part; the PDF's text, as llm-pdf extracts it

Each file becomes one user message with `meta.source` set to its path. A path given
by name that cannot be used is an error; a file swept up by a directory or glob that
is binary is skipped with a warning on stderr.
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Callable, Iterable
from functools import cache

from llmtools import detect, stack
from llmtools.errors import InputError, UsageError
from llmtools.notices import warn

SKIPPED_DIRS = {".git", ".hg", ".svn", "__pycache__", "node_modules", ".venv", "venv", ".tox",
                ".mypy_cache", ".pytest_cache", ".ruff_cache"}
GLOB_CHARS = re.compile(r"[*?\[]")


def is_url(value: str) -> bool:
    return value.startswith(("http://", "https://"))


@cache
def _glob_regex(pattern: str) -> re.Pattern:
    """Translate a glob with `**` into a regex over '/'-separated relative paths."""
    pattern = os.path.normpath(pattern)
    out = []
    index = 0
    while index < len(pattern):
        if pattern.startswith("**/", index):
            out.append("(?:.*/)?")
            index += 3
        elif pattern.startswith("**", index):
            out.append(".*")
            index += 2
        else:
            char = pattern[index]
            if char == "*":
                out.append("[^/]*")
            elif char == "?":
                out.append("[^/]")
            elif char == "[":
                close = pattern.find("]", index + 1)
                if close == -1:
                    out.append(re.escape(char))
                else:
                    body = pattern[index + 1:close].replace("\\", "\\\\")
                    out.append("[^" + body[1:] + "]" if body.startswith("!") else "[" + body + "]")
                    index = close
            else:
                out.append(re.escape(char))
            index += 1
    return re.compile("".join(out) + r"\Z")


def _excluded(path: str, exclusions: list[str]) -> bool:
    normal = os.path.normpath(path)
    return any(_glob_regex(pattern).match(normal) for pattern in exclusions)


def _walk(directory: str) -> Iterable[str]:
    for root, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in SKIPPED_DIRS)
        for name in sorted(files):
            if not name.startswith("."):
                yield os.path.join(root, name)


def _expand(value: str) -> list[tuple[str, bool]]:
    """(file path, named explicitly) pairs for one -p value that is not a URL."""
    if GLOB_CHARS.search(value):
        matches = sorted(glob.glob(value, recursive=True))
        if not matches:
            raise UsageError(f"-p {value}: no files match")
        found: list[tuple[str, bool]] = []
        for match in matches:
            if os.path.isdir(match):
                found.extend((path, False) for path in _walk(match))
            else:
                found.append((match, False))
        return found
    if os.path.isdir(value):
        return [(path, False) for path in _walk(value)]
    if os.path.exists(value):
        return [(value, True)]
    raise UsageError(f"-p {value}: no such file or directory")


def read_messages(data: bytes, source: str = "stdin") -> list[dict]:
    """Bytes that arrived on stdin (or a stack file) as messages; none for empty input.

    Unlike a `-p` file, this may be a stack: that is how commands pass stacks along.
    `source` names the input in errors, and in `meta.source` unless it is "stdin".
    """
    kind = detect.sniff(data)
    if kind == detect.EMPTY:
        return []
    named = None if source == "stdin" else source
    if detect.is_image(kind):
        return [stack.image_message(data, kind, source=named)]
    if kind == detect.PDF:
        return [_pdf_message(data, named)]
    # BINARY too: a NUL byte is valid UTF-8, and what was piped in is the user's to judge.
    text = stack.decode_text(data, source)
    if detect.looks_like_stack(text):
        return stack.parse_stack(text, source)
    return [stack.message("user", text)]


def _pdf_message(data: bytes, source: str | None) -> dict:
    from llmtools.content import pdf  # poppler bindings load only for PDFs

    return pdf.pdf_message(data, source=source)


def file_message(path: str, *, explicit: bool = True) -> dict | None:
    """The message for one file, or None (with a warning) for a binary swept up by a glob."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as error:
        if explicit:
            raise UsageError(f"-p {path}: {error.strerror}") from None
        warn(f"skipping {path}: {error.strerror}")
        return None
    kind = detect.sniff(data)
    if detect.is_image(kind):
        return stack.image_message(data, kind, source=path)
    if kind == detect.PDF:
        return _pdf_message(data, path)
    if kind == detect.BINARY:
        if explicit:
            raise InputError(f"-p {path}: binary file (text, images and PDFs can be read)")
        warn(f"skipping binary file {path}")
        return None
    try:
        text = stack.decode_text(data, path)
    except InputError:
        if explicit:
            raise
        warn(f"skipping {path}: not UTF-8 text")
        return None
    return stack.message("user", text, source=path)


def path_messages(values: list[str], *, fetch: Callable[[str], dict] | None = None) -> list[dict]:
    """Messages for all -p values, in the order given, each file once."""
    exclusions = [value[1:] for value in values if value.startswith("!")]
    includes = [value for value in values if not value.startswith("!")]
    if exclusions and not includes:
        raise UsageError("-p: only exclusions ('!pattern') given; name what to include too")
    messages: list[dict] = []
    seen: set[str] = set()
    for value in includes:
        if is_url(value):
            messages.append((fetch or _fetch_url)(value))
            continue
        for path, explicit in _expand(value):
            key = os.path.realpath(path)
            if key in seen or (not explicit and _excluded(path, exclusions)):
                continue
            seen.add(key)
            msg = file_message(path, explicit=explicit)
            if msg is not None:
                messages.append(msg)
    return messages


def _fetch_url(url: str) -> dict:
    """A URL given to -p, fetched as llm-fetch does: through the daemon's warm browser if
    there is one, else in this process."""
    from llmtools import services
    from llmtools.content.fetch import DEFAULT_TIMEOUT_S

    for result in services.fetch([url], timeout=DEFAULT_TIMEOUT_S, tool="llm"):
        if result.error is not None:
            raise result.error
        return result.message
    raise AssertionError("every URL gets a result")


def group_exclusions(argv: list[str]) -> list[str]:
    """Let `-p GLOB '!EXCLUDE' ...` work as LLMVM users type it.

    click options take one value each, so a `!pattern` right after a -p value would be
    read as part of the prompt; rewrite each such word into its own `-p !pattern`.
    """
    result: list[str] = []
    after_path_value = False
    index = 0
    while index < len(argv):
        word = argv[index]
        if word == "--":
            result.extend(argv[index:])
            break
        if word in ("-p", "--path") and index + 1 < len(argv):
            result.extend([word, argv[index + 1]])
            index += 2
            after_path_value = True
            continue
        if word.startswith("--path="):
            result.append(word)
            after_path_value = True
        elif after_path_value and word.startswith("!") and len(word) > 1:
            result.extend(["-p", word])
        else:
            result.append(word)
            after_path_value = False
        index += 1
    return result
