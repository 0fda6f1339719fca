"""What a command is given, as messages: stdin's bytes, and `-p/--path` values (files,
directories, globs with `!` exclusions, URLs).

stdin may carry a stack, plain text (one user message), an image (one image message) or
a PDF (its text); which one is told by content (`llmtools.detect`), never by a flag.

    -p notes.md              one file
    -p src/                  every text file below src/ (hidden, ignored and build files
                             skipped: see llmtools.pathwalk; --no-ignore keeps ignored ones)
    -p '**/*.py' '!**/__init__.py'    a glob, minus what the `!` patterns match
    -p https://example.com/  the page, fetched as llm-fetch does
    -p scan.png -p paper.pdf an image part; the PDF's text, as llm-pdf extracts it

Each file becomes one user message with `meta.source` set to its path. A path given
by name that cannot be used is an error; a file swept up by a directory or glob that
is binary, or not a regular file (a FIFO, a device), is skipped with a warning on stderr.
What one -p value may bring in is capped (MAX_PATH_BYTES): past that, the command stops
reading and says to use llm-map, which is made for inputs that large.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable, Iterable
from functools import cache

from llmtools.errors import InputError, UsageError
from llmtools.notices import warn

GLOB_CHARS = re.compile(r"[*?\[]")
MAX_PATH_BYTES = 32 << 20  # far more text than any context window holds


def is_url(value: str) -> bool:
    return value.startswith(("http://", "https://"))


@cache
def _glob_regex(pattern: str) -> re.Pattern:
    """A -p glob (`**` spans directories) as a regex over '/'-separated relative paths:
    the same translation as the ignore files' patterns."""
    from llmtools import pathwalk

    return re.compile(pathwalk.glob_regex(os.path.normpath(pattern)) + r"\Z")


def _excluded_by(path: str, exclusions: list[str]) -> str | None:
    """The first exclusion pattern that matches `path`, if any."""
    normal = os.path.normpath(path)
    return next((pattern for pattern in exclusions if _glob_regex(pattern).match(normal)), None)


def _skipped(path: str, why: str) -> None:
    warn(f"skipping {path}: {why}")


def _walk(directory: str, use_ignore_files: bool) -> Iterable[str]:
    from llmtools import pathwalk

    return pathwalk.walk(directory, use_ignore_files=use_ignore_files, skipped=_skipped)


def _glob(pattern: str, use_ignore_files: bool) -> list[str]:
    """Files a glob matches, found by walking from its literal leading directories as a
    directory is walked (so never through a symlinked directory, which could loop); a
    directory it matches brings in the files below it."""
    normal = os.path.normpath(pattern)
    parts = normal.split(os.sep)
    literal: list[str] = []
    for part in parts[:-1]:
        if GLOB_CHARS.search(part):
            break
        literal.append(part)
    base = os.sep.join(literal) or (os.sep if normal.startswith(os.sep) else ".")
    regex = _glob_regex(pattern)
    levels = None if "**" in normal else len(parts) - len(literal)
    matched_dirs: list[str] = []

    def matched(path: str) -> bool:
        normal_path = os.path.normpath(path)
        return bool(regex.match(normal_path)) or any(
            normal_path.startswith(directory + os.sep) for directory in matched_dirs)

    def descend(directory: str) -> bool:
        if matched(directory):
            matched_dirs.append(os.path.normpath(directory))
            return True
        depth = os.path.relpath(directory, base).count(os.sep) + 1
        return levels is None or depth < levels

    if not os.path.isdir(base):
        return []
    from llmtools import pathwalk

    found = pathwalk.walk(base, use_ignore_files=use_ignore_files, skipped=_skipped, descend=descend)
    # Named as the glob names them: `*.py` gives `a.py`, not `./a.py`.
    strip = len(base) + 1 if base == "." and not pattern.startswith("./") else 0
    return [path[strip:] for path in found if matched(path)]


def _expand(value: str, use_ignore_files: bool = True) -> list[tuple[str, bool]]:
    """(file path, named explicitly) pairs for one -p value that is not a URL."""
    if GLOB_CHARS.search(value) and not os.path.exists(value):
        matches = _glob(value, use_ignore_files)
        if not matches:
            raise UsageError(f"-p {value}: no files match")
        return [(path, False) for path in matches]
    if os.path.isdir(value):
        return [(path, False) for path in _walk(value, use_ignore_files)]
    if os.path.exists(value):
        return [(value, True)]
    raise UsageError(f"-p {value}: no such file or directory")


def read_messages(data: bytes, source: str = "stdin") -> list[dict]:
    """Bytes that arrived on stdin (or a stack file) as messages; none for empty input.

    Unlike a `-p` file, this may be a stack: that is how commands pass stacks along.
    `source` names the input in errors, and in `meta.source` unless it is "stdin".
    """
    from llmtools import detect, stack  # here: `llm --help` imports this module (group_exclusions)

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
    del data  # the bytes go as soon as they are text: stdin may be one 100 MB message
    if detect.looks_like_stack(text):
        return stack.parse_stack(text, source)
    return [stack.message("user", text)]


def _pdf_message(data: bytes, source: str | None) -> dict:
    from llmtools.content import pdf  # poppler bindings load only for PDFs

    return pdf.pdf_message(data, source=source)


def _read_bounded(path: str, limit: int, *, explicit: bool) -> bytes | None:
    """At most `limit` + 1 bytes of `path`; None for a non-regular file swept up by a walk.

    A swept-up path is opened without blocking and checked on the open descriptor: between
    the walk and here a file may have become a FIFO, whose open would wait for a writer.
    A path named explicitly may be a FIFO or a device (`-p <(cmd)`): it is read as it is.
    """
    flags = os.O_RDONLY | (0 if explicit else os.O_NONBLOCK)
    descriptor = os.open(path, flags)
    with open(descriptor, "rb") as handle:
        if not explicit and not stat.S_ISREG(os.fstat(descriptor).st_mode):
            warn(f"skipping {path}: not a regular file")
            return None
        return handle.read(limit + 1)


def _too_large(value: str, path: str) -> InputError:
    where = "" if value == path else f" (at {path})"
    return InputError(
        f"-p {value}: more than {MAX_PATH_BYTES >> 20} MB{where}, far more than a prompt holds; "
        "send a part of it, or use llm-map, which is made for inputs this large")


def file_message(path: str, *, explicit: bool = True, limit: int = MAX_PATH_BYTES,
                 value: str | None = None) -> dict | None:
    """The message for one file, or None (with a warning) for a binary swept up by a glob.

    At most `limit` bytes are read; a larger file is an error naming `value` (the -p value
    that brought it in), so `-p /dev/zero` ends at once instead of filling memory.
    """
    try:
        data = _read_bounded(path, limit, explicit=explicit)
    except OSError as error:
        if explicit:
            raise UsageError(f"-p {path}: {error.strerror}") from None
        warn(f"skipping {path}: {error.strerror}")
        return None
    if data is None:
        return None
    if len(data) > limit:
        raise _too_large(value or path, path)
    from llmtools import detect, stack  # here: `llm --help` imports this module (group_exclusions)

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


def path_messages(values: list[str], *, fetch: Callable[[str], dict] | None = None,
                  url_timeout: float | None = None, use_ignore_files: bool = True) -> list[dict]:
    """Messages for all -p values, in the order given, each file once; URLs through `fetch`
    (default: fetch_url, bounded by `url_timeout`).

    An exclusion that excludes nothing is warned about (it may have been meant as the
    prompt); -p values that end up bringing in no message at all are a usage error.
    """
    exclusions = [value[1:] for value in values if value.startswith("!")]
    includes = [value for value in values if not value.startswith("!")]
    if exclusions and not includes:
        raise UsageError("-p: only exclusions ('!pattern') given; name what to include too")
    messages: list[dict] = []
    seen: set[str] = set()
    used: set[str] = set()
    for value in includes:
        if is_url(value):
            messages.append(fetch(value) if fetch else fetch_url(value, timeout=url_timeout))
            continue
        budget = MAX_PATH_BYTES
        for path, explicit in _expand(value, use_ignore_files):
            key = os.path.realpath(path)
            excluded_by = None if explicit else _excluded_by(path, exclusions)
            if excluded_by is not None:
                used.add(excluded_by)
            if key in seen or excluded_by is not None:
                continue
            seen.add(key)
            msg = file_message(path, explicit=explicit, limit=budget, value=value)
            if msg is not None:
                budget = max(0, budget - _size(msg))
                messages.append(msg)
    for pattern in exclusions:
        if pattern not in used:
            warn(f"-p !{pattern} excluded nothing (to start the prompt with '!', put it after --)")
    if not messages:
        raise UsageError(f"-p {' '.join(values)}: no file to include (all excluded, ignored, skipped "
                         "or empty)")
    return messages


def _size(msg: dict) -> int:
    content = msg["content"]
    if isinstance(content, str):
        return len(content.encode("utf-8", "surrogatepass"))
    return sum(len(part.get("text") or part.get("data") or "") for part in content)


def fetch_url(url: str, *, timeout: float | None = None, tool: str = "llm") -> dict:
    """A URL given to -p (or /p), as llm-fetch would give it: through the daemon's warm browser
    when there is one, bounded by `timeout` (else LLMTOOLS_FETCH_TIMEOUT or [fetch] timeout),
    with a progress line when it is slow."""
    from llmtools import services
    from llmtools.config import setting
    from llmtools.content.fetch import DEFAULT_TIMEOUT_S
    from llmtools.content.progress_lines import announce_slow

    seconds = setting("timeout", DEFAULT_TIMEOUT_S, flag=timeout, env="LLMTOOLS_FETCH_TIMEOUT",
                      table="fetch", positive=True)
    for result in announce_slow([url], services.fetch([url], timeout=seconds, tool=tool)):
        if result.error is not None:
            raise result.error
        return result.message
    raise AssertionError("every URL gets a result")


def group_exclusions(argv: list[str]) -> list[str]:
    """Let `-p GLOB '!EXCLUDE' ...` work as LLMVM users type it.

    click options take one value each, so a `!pattern` right after a -p value would be
    read as part of the prompt; rewrite each such word into its own `-p !pattern`. A word
    with a space in it is a prompt, not a pattern (`llm -p a.py '!explain this'`); one
    that excludes nothing is warned about by `path_messages`.
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
        elif after_path_value and word.startswith("!") and len(word) > 1 and not _has_space(word):
            result.extend(["-p", word])
        else:
            result.append(word)
            after_path_value = False
        index += 1
    return result


def _has_space(word: str) -> bool:
    return any(char.isspace() for char in word)
