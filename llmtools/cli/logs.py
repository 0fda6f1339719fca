"""`llm logs`: the recent exchanges, newest last."""

from __future__ import annotations

import json

import click

from llmtools.cli.options import debug_option
from llmtools.cli.output import echo


def _summary(row: dict) -> str:
    fields = [row["created"], row["model"], f"conversation {row['conversation_id']}", row["status"]]
    if row["input_tokens"] is not None or row["output_tokens"] is not None:
        fields.append(f"{row['input_tokens'] or 0} in / {row['output_tokens'] or 0} out tokens")
    if row.get("cache_read_tokens") or row.get("cache_write_tokens"):
        fields.append(f"cache {row.get('cache_read_tokens') or 0} read / {row.get('cache_write_tokens') or 0} written")
    if row["cost_usd"]:
        fields.append(f"${row['cost_usd']:.6f}")
    return "## " + "  ".join(fields)


@click.command("logs")
@click.option("-n", "--count", type=click.IntRange(0), default=3, show_default=True,
              help="How many exchanges to show (0 for all).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per exchange.")
@click.option("--cid", metavar="ID", help="Only this conversation (id or prefix).")
@click.option("--path", "show_path", is_flag=True, help="Print the log database path and exit.")
@debug_option
def logs_command(count: int, as_json: bool, cid: str | None, show_path: bool) -> None:
    """Show logged exchanges, oldest first: prompt, answer, model, tokens, cost."""
    from llmtools.config import paths
    from llmtools.logs import open_log

    if show_path:
        echo(str(paths().log_db))
        return
    store = open_log()
    conversation = store.find_conversation(cid) if cid else None
    rows = store.recent(count or None, conversation)
    store.close()
    for row in rows:
        if as_json:
            row = dict(row)
            row["messages"] = json.loads(row["messages"])
            row["meta"] = json.loads(row["meta"]) if row["meta"] else None
            echo(json.dumps(row, ensure_ascii=False))
            continue
        echo(_summary(row))
        if row["prompt"]:
            echo("\n".join("> " + line for line in row["prompt"].splitlines()))
        echo(row["response"].rstrip("\n"))
        if row["error"]:
            echo(f"[error: {row['error']}]")
        echo()
