"""The `script:PATH` model: replies read from a file, one per call, for deterministic runs.

    llm-exec -m script:replies.jsonl "task"

Tests of loops (llm-exec's code/result turns) and demos use it: each call to the model
takes the next reply in the file, so a run is fully scripted and repeatable.

PATH ending in `.jsonl` or `.json`: one reply per line, either a JSON string (the reply
text) or an object:

    "plain reply text"
    {"text": "reply", "chunk": 5}          stream it in 5-character pieces (default 16)
    {"text": "...", "ignore_stop": true}   act like a provider without stop sequences
    {"text": "...", "stop_reason": "max_tokens"}   report this reason for stopping
    {"error": "message"}                   fail this call (exit status 1)
    {"text": "...", "delay_s": 0.2}        answer after this long, as a slow model would
    {"text": "seen: ", "quote": "F-\\d+"}  add the first match of this regex in what the
                                           model was sent, so that concurrent callers
                                           (llm-map) can tell which reply answered what

Any other PATH: plain text, replies separated by lines holding a single `%` (as in
fortune(6) files); a trailing newline before a separator is not part of the reply.

In the data directory (`script/`, 0700; never beside PATH, which may be anywhere) the
provider keeps, per script file (`cursor_path`, `requests_path`; tests read them), two files
named `<name>-<hash>` after the script file's name and a hash of its resolved path:

    <name>-<hash>.cursor          the index of the next reply to give (a number); delete it
                                  to start the script over
    <name>-<hash>.requests.jsonl  one JSON line per call, in call order: the reply's index,
                                  the messages the model was sent, max_tokens, temperature,
                                  thinking, stop and schema

Both are 0600 (they hold prompts) and updated under an exclusive lock on the cursor, so
several processes (llm-exec and the runtime worker running the model's code, which calls
the model too) share one queue in the order they call. A call when every reply is used fails with exit status 1.

`request.stop` is honoured as Anthropic and OpenAI do: the reply is cut before the
first stop string, which is not returned.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

from llmtools.errors import InputError, ProviderError
from llmtools.providers.base import (
    Event,
    Finished,
    Provider,
    Request,
    TextDelta,
    Usage,
    prepare_turns,
)
from llmtools.providers.context import estimate_tokens

DEFAULT_CHUNK = 16
SEPARATOR = "%"


def parse_replies(path: Path) -> list[dict]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise InputError(f"script {path}: {error.strerror}") from None
    if path.suffix in (".jsonl", ".json"):
        replies = []
        for number, line in enumerate(text.split("\n"), start=1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except ValueError as error:  # JSONDecodeError, or a number too long to convert
                reason = error.msg if isinstance(error, json.JSONDecodeError) else error
                raise InputError(f"script {path} line {number}: not valid JSON ({reason})") from None
            if isinstance(item, str):
                item = {"text": item}
            if not isinstance(item, dict) or not isinstance(item.get("text", item.get("error")), str):
                raise InputError(f'script {path} line {number}: expected a string or an object with '
                                 f'"text" or "error"')
            replies.append(item)
        return replies
    current: list[str] = []
    replies = []
    for line in text.split("\n"):
        if line.rstrip("\r") == SEPARATOR:
            replies.append({"text": "\n".join(current)})
            current = []
        else:
            current.append(line)
    tail = "\n".join(current)
    if tail.strip():
        replies.append({"text": tail.removesuffix("\n")})
    return replies


def cut_at_stop(text: str, stop: list[str] | None) -> tuple[str, bool]:
    """The text before the earliest stop string, and whether one was found."""
    positions = [text.find(s) for s in stop or () if s and s in text]
    if not positions:
        return text, False
    return text[:min(positions)], True


def _state_stem(script: Path) -> Path:
    import hashlib

    from llmtools.statedirs import ensure_private_dir, paths

    resolved = script.expanduser().resolve()
    digest = hashlib.sha256(str(resolved).encode()).hexdigest()[:16]
    try:
        directory = ensure_private_dir(paths().data_dir / "script")
    except OSError:
        # A data directory on read-only media: the cursor lives as long as the runtime
        # directory does (until logout), which is enough for a scripted session.
        directory = ensure_private_dir(paths().runtime_dir / "script")
    return directory / f"{resolved.name}-{digest}"


def cursor_path(script: Path) -> Path:
    """Where the cursor of script file `script` is kept."""
    stem = _state_stem(script)
    return stem.with_name(stem.name + ".cursor")


def requests_path(script: Path) -> Path:
    """Where what the model was sent from script file `script` is recorded."""
    stem = _state_stem(script)
    return stem.with_name(stem.name + ".requests.jsonl")


class ScriptProvider(Provider):
    name = "script"

    @property
    def path(self) -> Path:
        return Path(self.spec.model_id)

    def _take_reply(self, request: Request) -> tuple[int, dict | None, int]:
        """(index, the next reply or None if none is left, how many there are), recorded."""
        path = self.path
        replies = parse_replies(path)
        fd = os.open(cursor_path(path), os.O_RDWR | os.O_CREAT, 0o600)
        with os.fdopen(fd, "r+", encoding="utf-8") as cursor:
            fcntl.flock(cursor.fileno(), fcntl.LOCK_EX)
            raw = cursor.read().strip()
            index = int(raw) if raw.isdigit() else 0
            cursor.seek(0)
            cursor.truncate()
            cursor.write(str(index + 1))
            cursor.flush()
            record = {"index": index, "messages": request.messages, "max_tokens": request.max_tokens,
                      "temperature": request.temperature, "thinking": request.thinking,
                      "stop": getattr(request, "stop", None), "schema": request.schema}
            log_fd = os.open(requests_path(path), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            with open(log_fd, "a", encoding="utf-8") as log:
                log.write(json.dumps(record, ensure_ascii=False) + "\n")
            # The lock goes with the file's closing, after the record is written.
        return index, (replies[index] if index < len(replies) else None), len(replies)

    def stream(self, request: Request) -> Iterator[Event]:
        index, reply, count = self._take_reply(request)
        if reply is None:
            raise ProviderError(f"script {self.path}: no replies left (all {count} used; "
                                f"delete {cursor_path(self.path)} to start over)")
        if "error" in reply:
            raise ProviderError(f"script {self.path} reply {index + 1}: {reply['error']}")
        text = reply["text"]
        if reply.get("delay_s"):
            time.sleep(float(reply["delay_s"]))
        if reply.get("quote"):
            found = re.search(str(reply["quote"]), json.dumps(request.messages, ensure_ascii=False))
            text += found.group(0) if found else ""
        stopped = False
        if not reply.get("ignore_stop"):
            text, stopped = cut_at_stop(text, getattr(request, "stop", None))
        chunk = max(1, int(reply.get("chunk") or DEFAULT_CHUNK))
        system, turns = prepare_turns(request.messages)
        sent = (system or "") + "".join(json.dumps(turn["content"], ensure_ascii=False) for turn in turns)
        yield Usage(input_tokens=estimate_tokens(sent))
        for start in range(0, len(text), chunk):
            yield TextDelta(text[start:start + chunk])
        yield Usage(output_tokens=estimate_tokens(text))
        yield Finished(reply.get("stop_reason") or ("stop_sequence" if stopped else "end_turn"))
