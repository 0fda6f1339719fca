"""The core of `llm-exec`: the model writes prose and code, a persistent runtime runs it.

One step: ask the model (stopping at `</helpers>`); if its reply holds a

    <helpers>
    code
    </helpers>

block, run the code statement by statement in the thread's runtime and send the output
back as a user message

    <helpers_result>
    what it printed, expression values, result() values, the error if any
    </helpers_result>

then ask again. The loop ends when a reply has no block (that reply is the answer), or
at a bound: `max_steps` blocks run, or `max_errors` failed blocks in a row. At a bound
the model is told to answer without code; a block written after that is not run.

Nothing here prints or knows about click: `CodeActLoop.run()` yields events and the
CLI renders them (prose to stdout, code and results to stderr). `transcript` holds the
messages the loop added (assistant turns and result turns), for `-S`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import sys
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from llmtools import stack
from llmtools.providers.base import ModelSpec, Request, TextDelta, ThinkingDelta

HELPERS_OPEN, HELPERS_CLOSE = "<helpers>", "</helpers>"
RESULT_OPEN, RESULT_CLOSE = "<helpers_result>", "</helpers_result>"
TRUNCATED_STOP_REASONS = {"max_tokens", "length"}


class Runtimes(Protocol):
    """RuntimeManager, or the daemon client's stand-in for it."""

    def execute(self, thread_id: str, code: str, *, timeout: float, memory_mb: int | None = None,
                context: dict | None = None) -> dict: ...

    def evaluate(self, thread_id: str, expression: str, *, timeout: float) -> dict: ...


# --- events ------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Prose:
    """Model text outside code blocks: the part of the answer meant for the reader."""

    text: str


@dataclasses.dataclass(frozen=True)
class CodeText:
    """Code as the model writes it, inside a <helpers> block."""

    text: str


@dataclasses.dataclass(frozen=True)
class Thinking:
    text: str


@dataclasses.dataclass(frozen=True)
class BlockReady:
    """The model has finished writing a block (before it is confirmed, run or refused)."""

    step: int
    code: str


@dataclasses.dataclass(frozen=True)
class BlockStarted:
    step: int
    code: str


@dataclasses.dataclass(frozen=True)
class BlockFinished:
    step: int
    code: str
    result: dict
    feedback: str  # the <helpers_result> text the model is sent


@dataclasses.dataclass(frozen=True)
class BlockSkipped:
    step: int
    code: str
    reason: str
    feedback: str | None  # sent to the model when the loop goes on, else None


Event = Prose | CodeText | Thinking | BlockReady | BlockStarted | BlockFinished | BlockSkipped

# The answer a confirm function gives: run the block, tell the model it was declined
# (and go on), or stop the loop.
RUN, SKIP, QUIT = "run", "skip", "quit"
Confirm = Callable[[str], str]


@dataclasses.dataclass
class Settings:
    thread_id: str
    max_steps: int = 10
    max_errors: int = 3
    statement_timeout: float = 120.0
    memory_mb: int | None = None
    max_output_chars: int = 8000
    log: bool = True
    temperature: float | None = None
    max_tokens: int | None = None
    thinking: str | None = None
    model_timeout: float | None = None
    cwd: str = dataclasses.field(default_factory=os.getcwd)


# --- reading the model's stream ------------------------------------------------------


def _held_back(text: str, tag: str) -> int:
    """How many trailing characters of `text` could be the start of `tag`."""
    for size in range(min(len(tag) - 1, len(text)), 0, -1):
        if tag.startswith(text[-size:]):
            return size
    return 0


class HelpersSplitter:
    """Splits streamed text into prose and the code of the first <helpers> block.

    A tag may arrive split across chunks, so text that could be the start of one is held
    back until the next chunk settles it. Whatever follows `</helpers>` is dropped: the
    block must run before the model can know what comes next.
    """

    def __init__(self) -> None:
        self.pending = ""
        self.state = "prose"  # prose, code, closed
        self.prose_parts: list[str] = []
        self.code_parts: list[str] = []
        self.text_parts: list[str] = []  # everything kept, tags included

    @property
    def closed(self) -> bool:
        return self.state == "closed"

    @property
    def opened(self) -> bool:
        return self.state != "prose"

    def _emit(self, kind: str, text: str, out: list) -> None:
        if text:
            (self.prose_parts if kind == "prose" else self.code_parts).append(text)
            self.text_parts.append(text)
            out.append((kind, text))

    def feed(self, chunk: str) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        self.pending += chunk
        while self.pending and self.state != "closed":
            tag = HELPERS_OPEN if self.state == "prose" else HELPERS_CLOSE
            kind = self.state
            found = self.pending.find(tag)
            if found < 0:
                keep = _held_back(self.pending, tag)
                self._emit(kind, self.pending[:len(self.pending) - keep], out)
                self.pending = self.pending[len(self.pending) - keep:]
                break
            self._emit(kind, self.pending[:found], out)
            self.text_parts.append(tag)
            self.pending = self.pending[found + len(tag):]
            if self.state == "prose":
                self.state = "code"
            else:
                self.state, self.pending = "closed", ""
        return out

    def finish(self) -> list[tuple[str, str]]:
        """The stream ended: what was held back is plain text after all."""
        out: list[tuple[str, str]] = []
        if self.state != "closed":
            self._emit(self.state, self.pending, out)
        self.pending = ""
        return out

    @property
    def code(self) -> str | None:
        return "".join(self.code_parts) if self.opened else None

    def assistant_text(self) -> str:
        """The reply as it goes in the stack: a block the provider's stop cut short is closed."""
        text = "".join(self.text_parts)
        if self.state == "code":
            text += HELPERS_CLOSE
        return text


def clean_code(code: str) -> str:
    """The code of a block, without a Markdown fence some models put inside the tags."""
    lines = code.strip("\n").splitlines()
    if lines and lines[0].strip().startswith("```"):
        lines = lines[1:]
        if lines and lines[-1].strip() == "```":
            lines = lines[:-1]
    return "\n".join(lines).strip("\n") + "\n" if lines else ""


# --- what the model is told ------------------------------------------------------------

SYSTEM_PROMPT = """\
You can run Python code in a persistent Python {python} runtime to work on the task: \
compute, read and write files, fetch web pages and PDFs, and call other models. Write \
code between <helpers> and </helpers> tags, like this:

<helpers>
lines = read_file("notes.txt").splitlines()
len(lines)
</helpers>

How it works:
- Say briefly what you are doing, then write one <helpers> block and stop. The block \
runs at once, statement by statement, and you get its output back in \
<helpers_result></helpers_result>: what it printed, the value of each expression \
statement (as in a Python REPL), values passed to result(), and any error.
- Variables, functions and imports persist between blocks (and between tasks on the \
same thread), so build on earlier results instead of recomputing them.
- A statement may run for at most {timeout:g} seconds. Long output is cut, so print \
slices, counts or summaries, and use llm_call() to read long text.
- If a statement fails, the statements before it have run and their effects remain: \
fix the problem and continue from the failing statement.
- You may run at most {max_steps} blocks for this task.
- When you have the answer, write it for the user without a <helpers> block; that \
ends the task. Never write <helpers_result> yourself.
- The working directory is {cwd}.

These helpers are already defined (no import needed):

{helpers}"""

LAST_STEP_NOTE = ("That was the last block you may run for this task. Now give your answer "
                  "from what you have, without a <helpers> block.")
ERROR_LIMIT_NOTE = ("{count} blocks in a row have failed. Do not write more code: answer "
                    "with what you have, and say what did not work.")
DECLINED_NOTE = ("The user declined to run this block; it did not run. Do not run it again: "
                 "go on another way, or answer with what you have.")
CUT_OFF_NOTE = ("Your reply was cut off by the token limit inside a <helpers> block, so it "
                "did not run. Write a shorter block.")


def system_prompt(helpers_doc: str, settings: Settings) -> str:
    return SYSTEM_PROMPT.format(python=f"{sys.version_info.major}.{sys.version_info.minor}",
                                timeout=settings.statement_timeout, max_steps=settings.max_steps,
                                cwd=settings.cwd, helpers=helpers_doc.strip() or "(none)")


def truncate_middle(text: str, limit: int) -> str:
    """Keep the head and the tail, say how much was cut and how to see it."""
    if len(text) <= limit:
        return text
    head = text[:limit * 3 // 5]
    tail = text[len(text) - (limit - len(head)):]
    cut = len(text) - len(head) - len(tail)
    return (f"{head}\n[... output truncated: {cut:,} of {len(text):,} characters cut here; "
            f"print less at once (a slice, a count, a summary) to see the rest ...]\n{tail}")


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _statements_note(error: dict, total: int) -> str:
    index = error.get("index")
    if index is None:
        return "Nothing in the block ran."
    notes = []
    if index > 0:
        notes.append(f"Statements 1-{index} ran; their effects remain." if index > 1
                     else "Statement 1 ran; its effects remain.")
    if index + 1 < total:
        rest = f"{index + 2}-{total}" if index + 2 < total else f"{total}"
        notes.append(f"Statement{'s' if index + 2 < total else ''} {rest} did not run.")
    return " ".join(notes)


def format_error(result: dict) -> str:
    error = result["error"]
    total = result.get("statements_total") or len(result.get("statements") or ())
    index = error.get("index")
    where = f"statement {index + 1} of {total}" if index is not None else "the block"
    if error.get("line"):
        where += f" (line {error['line']})"
    lines = []
    kind = error.get("type")
    if kind == "Timeout":
        lines.append(f"Timeout in {where}: {error['message']}.")
    elif kind == "WorkerDied":
        lines.append(f"Crash in {where}: {error['message']}.")
    else:
        lines.append(f"Error in {where}:")
    if error.get("statement"):
        lines.append("    " + error["statement"].strip("\n").replace("\n", "\n    "))
    if kind not in ("Timeout", "WorkerDied"):
        detail = (error.get("traceback") or "").strip() or error.get("message") or kind
        lines.append(truncate_middle(detail, 3000))
    lines.append(_statements_note(error, total))
    local_vars = error.get("locals") or []
    if local_vars:
        lines.append("Variables now:")
        lines.extend(f"  {item['name']}: {item['type']} = {item['repr']}" if item["type"]
                     else f"  {item['repr']}" for item in local_vars)
    if kind == "Timeout":
        lines.append("Do less per statement, or make it faster (a loop that cannot end?).")
    if index is not None:
        lines.append("Fix it and write a new <helpers> block that continues from the failing "
                     "statement; do not repeat the statements that ran.")
    return "\n".join(lines)


def format_restart(result: dict) -> str:
    restored = result.get("restored") or {}
    names = restored.get("names") or []
    lost = restored.get("lost") or []
    text = ("The runtime process was restarted. Variables were restored from the snapshot "
            "saved after the previous block: " + (", ".join(names) if names else "none") + ".")
    if lost:
        text += " Lost (could not be saved): " + ", ".join(
            f"{item['name']} ({item['reason']})" for item in lost) + "."
    if restored.get("error"):
        text += f" The snapshot could not be loaded: {restored['error']}."
    return text + " Anything this block did before the failing statement is lost; redo it if needed."


def format_result(result: dict, max_chars: int) -> str:
    """The body of <helpers_result>: output in order, then the error, then restart notes."""
    pieces = []
    for statement in result.get("statements") or ():
        for key in ("stdout", "stderr"):
            if statement.get(key):
                pieces.append(statement[key] if statement[key].endswith("\n") else statement[key] + "\n")
        if statement.get("value") is not None:
            pieces.append(statement["value"] + "\n")
        for value in statement.get("results") or ():
            pieces.append(f"result(): {value['text']}\n")
    output = truncate_middle("".join(pieces), max_chars).rstrip("\n")
    sections = [output] if output.strip() else []
    dropped = result.get("dropped_bytes") or {}
    if dropped:
        sections.append("[the runtime kept only the first megabyte of "
                        + " and ".join(f"{name} ({count:,} bytes more were dropped)"
                                       for name, count in dropped.items()) + "]")
    if result.get("error"):
        sections.append(format_error(result))
    if result.get("restarted"):
        sections.append(format_restart(result))
    if not sections:
        count = len(result.get("statements") or ())
        sections.append(f"(no output; {_plural(count, 'statement')} ran)")
    return "\n".join(sections)


def result_message(feedback: str, result: dict | None, settings: Settings, step: int) -> dict:
    meta: dict[str, Any] = {"tool": "llm-exec", "thread": settings.thread_id, "step": step}
    if result is not None:
        meta["ok"] = result["ok"]
        if result.get("results"):
            meta["results"] = result["results"]
        if result.get("timed_out"):
            meta["timed_out"] = True
        if result.get("restarted"):
            meta["restarted"] = True
    return stack.message("user", f"{RESULT_OPEN}\n{feedback}\n{RESULT_CLOSE}", **meta)


# --- the loop ---------------------------------------------------------------------------


def fetch_helpers_doc(runtimes: Runtimes, thread_id: str, timeout: float) -> tuple[str, list[str], dict]:
    """(helper documentation for the prompt, helper load errors, the evaluate result).

    Asked of the thread's own runtime, which is the process that imported the user's
    helper modules; if that fails, the built-in helpers' documentation is used.
    """
    answer = runtimes.evaluate(thread_id, "__llmtools_helpers__()", timeout=timeout)
    if answer.get("ok") and answer.get("value"):
        try:
            described = json.loads(answer["value"])
            return described["doc"], list(described.get("errors") or []), answer
        except (ValueError, KeyError, TypeError):
            pass
    from llmtools.runtime import helpers

    problem = (answer.get("error") or {}).get("message") or "no answer"
    return helpers.describe(), [f"could not list the runtime's helpers: {problem}"], answer


class CodeActLoop:
    def __init__(self, spec: ModelSpec, messages: list[dict], runtimes: Runtimes, settings: Settings,
                 *, helpers_doc: str, confirm: Confirm | None = None, stream_factory=None,
                 conversation_id: str | None = None) -> None:
        self.spec = spec
        self.messages = messages
        self.runtimes = runtimes
        self.settings = settings
        self.helpers_doc = helpers_doc
        self.confirm = confirm
        self.stream_factory = stream_factory
        self.conversation_id = conversation_id
        self.transcript: list[dict] = []
        self.exchanges: list = []
        self.blocks_run = 0
        # None while running; then "answered", "step_limit", "error_limit" or "quit".
        self.stop_reason: str | None = None

    def context(self) -> dict:
        settings = self.settings
        options = {key: value for key, value in (
            ("temperature", settings.temperature), ("max_tokens", settings.max_tokens),
            ("thinking", settings.thinking), ("timeout", settings.model_timeout)) if value is not None}
        return {"model": self.spec.name, "model_options": options, "log": settings.log,
                "cwd": settings.cwd}

    def _request(self) -> Request:
        settings = self.settings
        system = stack.message("system", system_prompt(self.helpers_doc, settings))
        return Request(messages=[system, *self.messages, *self.transcript],
                       max_tokens=settings.max_tokens, temperature=settings.temperature,
                       thinking=settings.thinking, stop=[HELPERS_CLOSE])

    def _ask(self, splitter: HelpersSplitter):
        """One model turn, streamed through the splitter; yields its events, returns the Exchange."""
        from llmtools.exchange import Exchange

        exchange = Exchange(self.spec, self._request(), tool="llm-exec",
                            conversation_id=self.conversation_id, log=self.settings.log,
                            stream_factory=self.stream_factory)
        self.exchanges.append(exchange)
        self.conversation_id = exchange.conversation_id
        with contextlib.closing(exchange.events()) as events:
            for event in events:
                if isinstance(event, ThinkingDelta):
                    yield Thinking(event.text)
                elif isinstance(event, TextDelta):
                    for kind, text in splitter.feed(event.text):
                        yield Prose(text) if kind == "prose" else CodeText(text)
                    if splitter.closed:
                        break  # a provider without stop sequences would write on: stop reading
        for kind, text in splitter.finish():
            yield Prose(text) if kind == "prose" else CodeText(text)
        return exchange

    def _assistant_message(self, exchange, splitter: HelpersSplitter) -> dict:
        meta = exchange.assistant_meta()
        if splitter.closed:
            meta.pop("status", None)  # "partial" only because we stopped reading at </helpers>
        return {"role": "assistant", "content": splitter.assistant_text(), "meta": meta}

    def run(self) -> Iterator[Event]:
        settings = self.settings
        consecutive_errors = 0
        code_allowed = True
        limit_reason = None
        while True:
            splitter = HelpersSplitter()
            exchange = yield from self._ask(splitter)
            self.transcript.append(self._assistant_message(exchange, splitter))
            if splitter.code is None:
                self.stop_reason = "answered"
                return
            code = clean_code(splitter.code)
            step = self.blocks_run + 1
            yield BlockReady(step, code)
            if not code_allowed:
                self.stop_reason = limit_reason
                yield BlockSkipped(step, code, limit_reason, None)
                return
            if not splitter.closed and exchange.outcome.stop_reason in TRUNCATED_STOP_REASONS:
                consecutive_errors += 1
                feedback = CUT_OFF_NOTE
                yield BlockSkipped(step, code, "cut_off", feedback)
            elif self.confirm is not None and (answer := self.confirm(code)) != RUN:
                if answer == QUIT:
                    self.stop_reason = "quit"
                    yield BlockSkipped(step, code, "quit", None)
                    return
                self.blocks_run += 1  # a declined block is a step: the bound still holds
                feedback = DECLINED_NOTE
                yield BlockSkipped(step, code, "declined", feedback)
            else:
                self.blocks_run += 1
                yield BlockStarted(step, code)
                result = self.runtimes.execute(
                    settings.thread_id, code, timeout=settings.statement_timeout,
                    memory_mb=settings.memory_mb, context=self.context())
                consecutive_errors = 0 if result["ok"] else consecutive_errors + 1
                limit_reason, note = self._bound_reached(consecutive_errors)
                feedback = format_result(result, settings.max_output_chars) + note
                code_allowed = limit_reason is None
                self.transcript.append(result_message(feedback, result, settings, step))
                yield BlockFinished(step, code, result, feedback)
                continue
            # A block that did not run (cut off, declined) still counts against the bounds.
            limit_reason, note = self._bound_reached(consecutive_errors)
            code_allowed = limit_reason is None
            self.transcript.append(result_message(feedback + note, None, settings, step))

    def _bound_reached(self, consecutive_errors: int) -> tuple[str | None, str]:
        """(the bound now reached or None, the note that tells the model to answer)."""
        if self.blocks_run >= self.settings.max_steps:
            return "step_limit", "\n" + LAST_STEP_NOTE
        if consecutive_errors >= self.settings.max_errors:
            return "error_limit", "\n" + ERROR_LIMIT_NOTE.format(count=consecutive_errors)
        return None, ""
