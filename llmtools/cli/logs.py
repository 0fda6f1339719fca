"""`llm logs`: the recent exchanges, newest last."""

from __future__ import annotations

import json
import re
import time

import click

from llmtools.cli.options import complete_conversation_ids, complete_model_names, debug_option
from llmtools.cli.output import echo
from llmtools.errors import UsageError

# `tail`'s header for each file: a line no Markdown answer is likely to hold.
HEADER = "==> {} <=="
DURATION = re.compile(r"^(\d+)\s*([smhdw])$")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def since_time(value: str) -> str:
    """--since as the log's ISO UTC text: "2h", "30m", "7d" ago, or a date/time given."""
    match = DURATION.match(value.strip().lower())
    if match:
        then = time.time() - int(match[1]) * UNIT_SECONDS[match[2]]
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(then))
    if not re.match(r"^\d{4}-\d\d-\d\d([ T]\d\d:\d\d(:\d\d)?)?Z?$", value.strip()):
        raise UsageError(f"--since takes a time such as 2h, 30m, 7d or 2026-11-29T09:30 (UTC), not {value!r}")
    return value.strip().rstrip("Z").replace(" ", "T")


def _summary(row: dict, short_id: str) -> tuple[str, dict]:
    meta = json.loads(row["meta"]) if row["meta"] else {}
    status = row["status"]
    if meta.get("stop_reason") == "max_tokens":
        status += ", cut at the token limit"
    fields = [row["created"], row["tool"], row["model"], f"conversation {short_id}", status]
    if row["input_tokens"] is not None or row["output_tokens"] is not None:
        fields.append(f"{row['input_tokens'] or 0} in / {row['output_tokens'] or 0} out tokens")
    if row.get("cache_read_tokens") or row.get("cache_write_tokens"):
        fields.append(f"cache {row.get('cache_read_tokens') or 0} read / {row.get('cache_write_tokens') or 0} written")
    if row["cost_usd"]:
        fields.append(f"${row['cost_usd']:.6f}")
    return HEADER.format("  ".join(fields)), meta


@click.command("logs")
@click.option("-n", "--count", type=click.IntRange(0), default=3, show_default=True,
              help="How many exchanges to show (0 for all).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per exchange.")
@click.option("--cid", metavar="ID", shell_complete=complete_conversation_ids,
              help="Only this conversation (id or prefix).")
@click.option("-q", "--query", metavar="TEXT", help="Only exchanges whose prompt or answer holds TEXT.")
@click.option("-m", "--model", metavar="MODEL", shell_complete=complete_model_names,
              help="Only exchanges with this model (or alias).")
@click.option("--since", metavar="WHEN", help="Only exchanges since WHEN: 2h, 30m, 7d, or a UTC date/time.")
@click.option("--path", "show_path", is_flag=True, help="Print the log database path and exit.")
@debug_option
def logs_command(count: int, as_json: bool, cid: str | None, query: str | None, model: str | None,
                 since: str | None, show_path: bool) -> None:
    """Show logged exchanges, oldest first: prompt, answer, model, tokens, cost.

    Each starts with a `==> ... <==` line: when, which command made it, the model, the
    conversation (its shortest unique id prefix, for --cid and llm --cid), the status.
    """
    from llmtools.config import follow_aliases, load_config_cached
    from llmtools.logs import open_log
    from llmtools.statedirs import paths

    if show_path:
        echo(str(paths().log_db))
        return
    if not paths().log_db.exists():  # reading must not create the log: a fresh home has nothing to show
        if cid:
            raise UsageError(f"no conversation {cid!r} in the log (`llm logs` lists them)")
        return
    store = open_log()
    try:
        conversation = store.find_conversation(cid) if cid else None
        rows = store.recent(count or None, conversation, text=query,
                            model=follow_aliases(model, load_config_cached()) if model else None,
                            since=since_time(since) if since else None)
        short = store.short_conversation_ids({row["conversation_id"] for row in rows}) if not as_json else {}
    finally:
        store.close()
    for row in rows:
        if as_json:
            row = dict(row)
            row["messages"] = json.loads(row["messages"])
            row["meta"] = json.loads(row["meta"]) if row["meta"] else None
            echo(json.dumps(row, ensure_ascii=False))
            continue
        _show(row, short.get(row["conversation_id"], row["conversation_id"]))


def _show(row: dict, short_id: str) -> None:
    header, meta = _summary(row, short_id)
    echo(header)
    if row["prompt"]:
        echo("\n".join("> " + line for line in row["prompt"].splitlines()))
    echo(row["response"].rstrip("\n"))
    if meta.get("stop_reason") == "max_tokens":
        echo("[cut: the answer stopped at the token limit]")
    if row["error"]:
        echo(f"[error: {row['error']}]")
    echo()
