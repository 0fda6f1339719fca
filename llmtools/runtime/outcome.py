"""What one execute/evaluate call saw of its block, assembled into the ExecuteResult that
RuntimeManager returns (and the daemon forwards as it is)."""

from __future__ import annotations

import time
from typing import cast

from llmtools.runtime.results import BlockError, ExecuteResult, Restored, StatementRecord, block_error


class BlockRun:
    """What one execute/evaluate call saw of its block, assembled into the result."""

    def __init__(self, thread_id: str, timeout: float) -> None:
        self.thread_id = thread_id
        self.timeout = timeout
        self.started = time.monotonic()
        self.statements: list[StatementRecord] = []
        self.statements_total: int | None = None
        self.current: dict | None = None  # the statement that started and has not ended
        self.error: BlockError | None = None
        self.timed_out = False
        self.interrupted = False
        self.restarted = False
        self.restored: Restored | None = None
        self.worker_lost = False
        self.finished = False  # the worker said "done", or is gone: nothing more will come
        self.dropped_bytes: dict[str, int] = {}
        self.pid: int | None = None

    def statement_started(self, event: dict) -> None:
        self.current = {"index": event.get("index"), "line": event.get("line"),
                        "source": event.get("source", "")}

    def statement_done(self, event: dict, interrupted_for: str | None) -> None:
        # The record as the worker's run_statement built it (its "error" already taken out).
        info = cast(StatementRecord, event.get("statement") or {})
        error = event.get("error")
        self.current = None
        if info.get("status") == "interrupted" and interrupted_for == "timeout":
            info["status"] = "timeout"
            self.timed_out = True
            error = dict(error or {}, type="Timeout",
                         message=f"the statement was still running after {self.timeout:g} s "
                                 "and was interrupted")
        elif info.get("status") == "interrupted" and interrupted_for == "cancel":
            self.interrupted = True
            error = dict(error or {}, type="Interrupted", message="interrupted by the user")
        self.statements.append(info)
        if error is not None:
            self.error = error

    def block_done(self, event: dict) -> None:
        """The worker's "done": the block is over, and the snapshot is being written."""
        self.finished = True
        if event.get("error") is not None and self.error is None:
            self.error = event["error"]  # a syntax error or a refused memory limit
        if event.get("statements_total") is not None:
            self.statements_total = event["statements_total"]
        self.dropped_bytes = event.get("dropped_bytes") or {}

    def worker_failed(self, message: str | None) -> None:
        """The worker's "fatal": the worker itself could not run the request."""
        self.finished = True
        self.error = block_error("RuntimeError", f"runtime failure: {message}")

    def worker_gone(self, how: str, reason: str | None, timeout_or_cancel: str | None) -> None:
        """The worker died or was killed; the statement it was running ends here."""
        self.worker_lost = self.finished = True
        statement = self.current or {"index": None, "line": None, "source": ""}
        if timeout_or_cancel == "timeout":
            status, kind = "timeout", "Timeout"
            message = (f"the statement was still running after {self.timeout:g} s and did not stop "
                       "when interrupted, so the runtime process was killed")
            self.timed_out = True
        elif timeout_or_cancel == "cancel":
            status, kind = "interrupted", "Interrupted"
            message = "interrupted by the user; the statement did not stop, so the runtime was killed"
            self.interrupted = True
        else:
            status, kind = "crashed", "WorkerDied"
            where = "while running this statement" if self.current is not None else "before the block ran"
            message = f"the runtime process {how} {where}"
            if reason:
                message += f" ({reason})"
        if self.current is not None:
            self.statements.append({"index": statement["index"], "line": statement["line"],
                                    "source": statement["source"], "status": status, "duration_s": None,
                                    "value": None, "stdout": "", "stderr": "", "results": []})
        self.current = None
        self.error = block_error(kind, message, statement=statement["source"],
                                 index=statement["index"], line=statement["line"])

    def result(self) -> ExecuteResult:
        """The one place an ExecuteResult is made."""
        statements = self.statements
        return {
            "ok": self.error is None,
            "thread_id": self.thread_id,
            "statements": statements,
            "statements_total": self.statements_total if self.statements_total is not None
            else len(statements),
            "stdout": "".join(s.get("stdout") or "" for s in statements),
            "stderr": "".join(s.get("stderr") or "" for s in statements),
            "results": [r for s in statements for r in s.get("results") or []],
            "error": self.error,
            "timed_out": self.timed_out,
            "interrupted": self.interrupted,
            "restarted": self.restarted,
            "restored": self.restored,
            "dropped_bytes": self.dropped_bytes,
            "duration_s": round(time.monotonic() - self.started, 6),
            "pid": self.pid,
        }
