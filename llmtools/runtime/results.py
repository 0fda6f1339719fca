"""The shapes that cross the runtime's boundaries, each with the one function that makes it.

A runtime result travels as plain JSON (worker -> manager -> daemon socket -> llm-exec),
so these are TypedDicts rather than classes: the same dict on both sides of every pipe,
with its keys written down once, here.

    BlockError      why a block stopped: built by `block_error` wherever it is decided
                    (the worker, the manager, a dead worker)
    StatementRecord one statement that started
    ExecuteResult   what `RuntimeManager.execute` returns (made by `BlockRun.result`)
    EvaluateResult  what `RuntimeManager.evaluate` returns (made by `evaluate_result`)
    HelperContext   what llm-exec sends with each block so the helpers (llm_call, ...)
                    call the same model the same way: the resolved model spec itself,
                    since the worker runs in the daemon's environment, not the caller's
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, NotRequired, TypedDict

if TYPE_CHECKING:
    from llmtools.providers.base import ModelSpec


class LocalVariable(TypedDict):
    name: str
    type: str  # "" for the "... N names in all" line
    repr: str


class BlockError(TypedDict):
    type: str  # an exception class name, or Timeout, Interrupted, WorkerDied, MemoryLimit,
    #            RuntimeUnavailable, RuntimeError (the worker itself failed)
    message: str
    statement: str  # the failing statement's source ("" when it is not one statement)
    index: int | None  # its position in the block; None: nothing in the block ran
    line: int | None
    traceback: str  # without the runtime's own frames
    locals: list[LocalVariable]
    limit: NotRequired[str]  # the resource limit that stopped it (memory_mb, cpu_s, processes, ...)


def block_error(kind: str, message: str, *, statement: str = "", index: int | None = None,
                line: int | None = None, traceback: str = "",
                local_variables: list[LocalVariable] | None = None) -> BlockError:
    return {"type": kind, "message": message, "statement": statement, "index": index,
            "line": line, "traceback": traceback, "locals": local_variables or []}


class ResultValue(TypedDict):
    """A value the code passed to result()."""

    type: str
    text: str
    json: NotRequired[Any]  # when the value is JSON-able and not too long


class StatementRecord(TypedDict):
    index: int | None
    line: int | None
    source: str
    status: str  # ok, error, timeout, interrupted, crashed
    duration_s: float | None
    value: str | None  # repr of an expression statement's value
    value_type: NotRequired[str]
    stdout: str
    stderr: str
    stdout_dropped_bytes: NotRequired[int]
    stderr_dropped_bytes: NotRequired[int]
    stdout_kept: NotRequired[dict]  # a large output kept whole for paging (runtime/outputs.py)
    stderr_kept: NotRequired[dict]
    results: list[ResultValue]


class Restored(TypedDict):
    """What came back when a worker (re)started from its thread's snapshot."""

    names: list[str]
    lost: list[dict]  # {"name", "reason"} of each variable that could not be saved
    error: str | None
    created: NotRequired[str]


class ExecuteResult(TypedDict):
    ok: bool  # no statement failed, timed out or crashed
    thread_id: str
    pid: int | None  # the worker that ran it
    statements: list[StatementRecord]  # those that started, in order
    statements_total: int  # how many the block has
    stdout: str  # everything the block printed, joined
    stderr: str
    results: list[ResultValue]
    error: BlockError | None
    timed_out: bool  # a statement ran past its timeout and was stopped
    interrupted: bool  # stopped by interrupt() or Ctrl-C
    restarted: bool  # the worker was replaced (killed or died) during this call
    restored: Restored | None
    dropped_bytes: dict[str, int]  # output beyond the capture limit, per stream
    duration_s: float


class EvaluateResult(TypedDict):
    ok: bool
    thread_id: str
    value: str | None  # str() of a string, repr() of anything else; None when there is none
    value_type: str | None
    stdout: str
    stderr: str
    results: list[ResultValue]
    error: BlockError | None
    timed_out: bool
    interrupted: bool
    restarted: bool
    restored: Restored | None
    duration_s: float


def evaluate_result(run: ExecuteResult) -> EvaluateResult:
    """An evaluate call's answer: the value of the last statement, if it ran."""
    last = run["statements"][-1] if run["statements"] else None
    ran = run["ok"] and last is not None and last["status"] == "ok"
    return {
        "ok": run["ok"],
        "thread_id": run["thread_id"],
        "value": last["value"] if ran and last is not None else None,
        "value_type": last.get("value_type", "NoneType") if ran and last is not None else None,
        "stdout": run["stdout"],
        "stderr": run["stderr"],
        "results": run["results"],
        "error": run["error"],
        "timed_out": run["timed_out"],
        "interrupted": run["interrupted"],
        "restarted": run["restarted"],
        "restored": run["restored"],
        "duration_s": run["duration_s"],
    }


TASK_CHARS = 8000  # of each task message sent to the helpers


class RequestOptions(TypedDict, total=False):
    temperature: float
    max_tokens: int
    thinking: str


class HelperContext(TypedDict, total=False):
    """Sent with each block; `--eval` sends none, and the helpers keep the last one."""

    model: dict[str, Any]  # the fields of the caller's resolved ModelSpec
    request_options: RequestOptions
    log: bool
    cwd: str  # the caller's working directory
    task: list[dict]  # what llm-exec was asked (its messages), where llm_bind widens its scope
    config: dict[str, Any]  # the caller's config.toml without secrets (the worker cannot read it)
    # What llm-exec was given (stdin, -p), sent once with the first block: [{"text", "source"}].
    documents: list[dict[str, Any]]


def helper_context(spec: ModelSpec, *, temperature: float | None, max_tokens: int | None,
                   thinking: str | None, log: bool, cwd: str, task: list[dict] | None = None) -> HelperContext:
    options: RequestOptions = {}
    if temperature is not None:
        options["temperature"] = temperature
    if max_tokens is not None:
        options["max_tokens"] = max_tokens
    if thinking is not None:
        options["thinking"] = thinking
    from llmtools.config import load_config_cached, without_secrets

    context: HelperContext = {"model": dataclasses.asdict(spec), "request_options": options, "log": log,
                              "cwd": cwd, "config": without_secrets(load_config_cached())}
    if task:
        from llmtools.stack import text_of

        # Text only and clipped: this goes with every block, and a piped PDF can be megabytes.
        context["task"] = [{"role": "user", "content": text_of(message)[:TASK_CHARS]}
                           for message in task if message.get("role") == "user" and text_of(message).strip()]
    return context


def without_key(context: HelperContext) -> HelperContext:
    """The context a worker may see: the model spec without its API key (the parent,
    which runs the worker's model calls, holds it)."""
    model = context.get("model")
    if not model or model.get("api_key") is None:
        return context
    return {**context, "model": {**model, "api_key": None}}


def context_spec(context: HelperContext) -> ModelSpec:
    """The caller's model spec, as it resolved it (the default model when none was sent)."""
    from llmtools.providers.base import ModelSpec

    fields = context.get("model")
    if fields is None:
        # No model was sent (`--eval` before any block): the parent resolves its default
        # (inside a worker there is no configuration to resolve it from).
        return ModelSpec(name="", provider="", model_id="")
    return ModelSpec(**fields)
