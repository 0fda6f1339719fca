"""Threads that remember: a `--thread ID` keeps its conversation as well as its runtime.

A thread's conversation is an ordinary conversation of the log whose id is
`thread:ID:<log id>`; the newest such conversation is the thread's current one, so
`--new` just starts another (the runtime, and so the variables, stay). The messages
continued are the log's (what the last call was sent plus its answer) without llm-exec's
own system prompt, which each call adds afresh.

`list_threads` joins what the log knows (last use, size) with the runtimes' snapshots
(variables) and the daemon's live runtimes.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

PREFIX = "thread:"


def conversation_prefix(thread: str) -> str:
    return f"{PREFIX}{thread}:"


def new_conversation_id(thread: str) -> str:
    from llmtools.logs import new_id

    return conversation_prefix(thread) + new_id()


def thread_of(conversation_id: str) -> str | None:
    """The thread a conversation id belongs to, or None for an ordinary conversation."""
    if not conversation_id.startswith(PREFIX):
        return None
    thread, sep, rest = conversation_id[len(PREFIX):].rpartition(":")
    return thread if sep and rest and ":" not in rest else None


def current_conversation(store, thread: str) -> str | None:
    """The thread's newest conversation in the log, or None if it has none yet."""
    for conversation_id, _ in store.conversations_with_prefix(conversation_prefix(thread)):
        if thread_of(conversation_id) == thread:
            return conversation_id
    return None


def conversation_to_continue(thread: str | None, *, new: bool, chosen: bool) -> str | None:
    """The conversation `--thread` continues: the thread's newest, unless there is no thread,
    `--new` starts over, or -c/--cid chose another (None: a new conversation)."""
    if not thread or new or chosen:
        return None
    from llmtools.logs import open_log

    store = open_log()
    try:
        return current_conversation(store, thread)
    finally:
        store.close()


def is_own_prompt(message: dict) -> bool:
    """llm-exec's system prompt as logged: left out of a continued conversation."""
    return message.get("role") == "system" and (message.get("meta") or {}).get("tool") == "llm-exec"


# --- what exists ------------------------------------------------------------------------------


class _PlainData(pickle.Unpickler):
    """Reads a snapshot's outer document only (dicts, strings, numbers, bytes): the
    variables inside stay pickled, so listing threads never runs or imports user code."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"{module}.{name} is not plain data")


def snapshot_facts(path: Path) -> dict | None:
    try:
        with open(path, "rb") as handle:
            document = _PlainData(handle).load()
    except (OSError, pickle.UnpicklingError, EOFError, ValueError, TypeError):
        return None
    return document if isinstance(document, dict) else None


def thread_exists(runtimes, thread: str) -> bool:
    from llmtools.logs import open_log
    from llmtools.runtime import layout

    if layout.has_snapshot(layout.runtime_dir(), thread):
        return True
    if any(row.get("id") == thread for row in _live_threads(runtimes)):
        return True
    store = open_log()
    try:
        return current_conversation(store, thread) is not None
    finally:
        store.close()


def check_exists(runtimes, thread: str | None) -> None:
    """--eval on a thread nobody made is a mistake (a typo, most likely), not a new thread."""
    from llmtools.errors import UsageError

    if thread and not thread_exists(runtimes, thread):
        raise UsageError(f"no thread {thread!r}: `llm-exec --threads` lists them; "
                         f"`llm-exec --thread {thread} TASK` starts it")


def _live_threads(runtimes) -> list[dict]:
    if runtimes is None:  # not asked (completion must not start a daemon)
        return []
    try:
        return list(runtimes.threads())
    except Exception:  # noqa: BLE001  (a listing must not fail because the daemon did)
        return []


def list_threads(runtimes) -> list[dict]:
    """One row per named thread: id, variables, last use, messages, tokens, live (`runtimes`
    None: live runtimes are not looked for)."""
    from llmtools.logs import open_log

    rows: dict[str, dict] = {}

    def row(thread: str) -> dict:
        return rows.setdefault(thread, {"id": thread, "variables": None, "last_used": None,
                                        "messages": 0, "tokens": 0, "live": False})

    store = open_log()
    try:
        for conversation_id, last_used in store.conversations_with_prefix(PREFIX):
            thread = thread_of(conversation_id)
            if thread is None or row(thread)["last_used"]:
                continue  # newest first: the first seen is the thread's current conversation
            entry = row(thread)
            entry["last_used"] = last_used
            entry["messages"] = sum(1 for message in store.conversation_messages(conversation_id)
                                    if not is_own_prompt(message))
            last_row = store.recent(1, conversation_id)
            entry["tokens"] = (last_row[0]["input_tokens"] if last_row else None) or 0
    finally:
        store.close()
    from llmtools.runtime import layout

    directory = layout.runtime_dir()
    snapshots = [path for pattern in layout.SNAPSHOT_GLOBS for path in directory.glob(pattern)]
    for path in sorted(snapshots):
        facts = snapshot_facts(path) or {}
        thread = facts.get("thread_id")
        if isinstance(thread, str) and thread and not thread.startswith("exec-"):
            entry = row(thread)
            entry["variables"] = facts.get("names")
            created = facts.get("created")
            if isinstance(created, (int, float)):
                entry["snapshot_time"] = created
    for live in _live_threads(runtimes):
        if not str(live.get("id", "")).startswith("exec-"):
            row(str(live["id"]))["live"] = True
    return sorted(rows.values(), key=lambda entry: entry["last_used"] or "", reverse=True)


def format_threads(rows: list[dict]) -> str:
    lines = []
    for entry in rows:
        names = entry["variables"]
        variables = ", ".join(names) if names else ("none" if names is not None else "unknown")
        last = entry["last_used"] or "never asked"
        live = " (runtime live)" if entry["live"] else ""
        lines.append(f"{entry['id']}\tlast used {last}\t{entry['messages']} messages, "
                     f"{entry['tokens']} tokens\tvariables: {variables}{live}")
    return "\n".join(lines)
