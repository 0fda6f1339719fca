"""What the model is told: the system prompt, the notes at the loop's bounds, and a block's
result written as the text of <helpers_result>."""

from __future__ import annotations

import sys
from typing import Any

from llmtools import stack
from llmtools.runtime.outputs import MAX_KEPT_BYTES, PAGE_CHARS
from llmtools.runtime.results import BlockError, ExecuteResult

RESULT_OPEN, RESULT_CLOSE = "<helpers_result>", "</helpers_result>"

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


def system_prompt(helpers_doc: str, *, statement_timeout: float, max_steps: int, cwd: str) -> str:
    return SYSTEM_PROMPT.format(python=f"{sys.version_info.major}.{sys.version_info.minor}",
                                timeout=statement_timeout, max_steps=max_steps, cwd=cwd,
                                helpers=helpers_doc.strip() or "(none)")


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


def _statements_note(error: BlockError, total: int) -> str:
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


def format_error(result: ExecuteResult) -> str:
    error = result["error"]
    if error is None:
        return "The block failed without saying why."
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


def format_restart(result: ExecuteResult) -> str:
    restored = result.get("restored")
    if restored is None:
        return "The runtime process was restarted; nothing was restored."
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


def format_result(result: ExecuteResult, max_chars: int) -> str:
    """The body of <helpers_result>: output in order, then the error, then restart notes."""
    pieces = []
    for statement in result.get("statements") or ():
        for key in ("stdout", "stderr"):
            if statement.get(key):
                text = _with_true_tail(statement, key)
                pieces.append(text if text.endswith("\n") else text + "\n")
        if (shown := statement.get("value")) is not None:
            pieces.append(shown + "\n")
        for value in statement.get("results") or ():
            pieces.append(f"result(): {value['text']}\n")
    whole = "".join(pieces)
    output = truncate_middle(whole, max_chars).rstrip("\n")
    sections = [output] if output.strip() else []
    if len(whole) > max_chars:  # only what the model did not see whole needs paging
        sections += kept_output_notes(result)
    dropped = {name: count for name, count in (result.get("dropped_bytes") or {}).items()
               if not _kept_whole(result, name)}
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


def _with_true_tail(statement: Any, key: str) -> str:
    """The statement's output as read back; when the read-back stopped short (past a
    megabyte) but the whole was kept, with the whole's real end, so the tail shown is the end."""
    text = statement[key]
    kept = statement.get(f"{key}_kept")
    if kept and statement.get(f"{key}_dropped_bytes") and kept.get("tail"):
        return f"{text}\n[...]\n{kept['tail']}"
    return text


def _kept_whole(result: ExecuteResult, key: str) -> bool:
    """Whether what the runtime did not read back of `key` is in a kept output all the same."""
    statements: list[Any] = list(result.get("statements") or ())
    kept = [statement.get(f"{key}_kept") for statement in statements]
    return any(kept) and not any(item.get("cut_bytes") for item in kept if item)


def kept_output_notes(result: ExecuteResult) -> list[str]:
    """How to page through statements' whole outputs the runtime kept (runtime/outputs.py)."""
    notes = []
    for number, statement in enumerate(result.get("statements") or (), start=1):
        for key in ("stdout", "stderr"):
            kept: dict | None = statement.get(f"{key}_kept")  # type: ignore[assignment]
            if not kept:
                continue
            handle, chars = kept["handle"], kept["chars"]
            pages = -(-chars // PAGE_CHARS)
            note = (f'[the whole {key} of statement {number} is kept as "{handle}": {chars:,} characters, '
                    f'{kept["lines"]:,} lines; read_output("{handle}", start, length) returns any part '
                    f'of it, output("{handle}", page=N) page N of {pages}')
            if kept.get("cut_bytes"):
                note += f"; {kept['cut_bytes']:,} bytes past the first {MAX_KEPT_BYTES >> 20} MB were not kept"
            notes.append(note + "]")
    return notes


def result_message(feedback: str, result: ExecuteResult | None, thread_id: str, step: int) -> dict:
    """The user message that carries <helpers_result>; `result` is None for a block that did not run."""
    meta: dict[str, Any] = {"tool": "llm-exec", "thread": thread_id, "step": step}
    if result is not None:
        meta["ok"] = result["ok"]
        if result.get("results"):
            meta["results"] = result["results"]
        if result.get("timed_out"):
            meta["timed_out"] = True
        if result.get("restarted"):
            meta["restarted"] = True
    return stack.message("user", f"{RESULT_OPEN}\n{feedback}\n{RESULT_CLOSE}", **meta)
