"""Running a block of code statement by statement, as a REPL would (inside the worker).

A block is parsed once, then each top-level statement is compiled and run on its own,
so that: the value of an expression statement is shown (`x` on its own line prints
repr(x)); output is attributed to the statement that printed it; a failure names the
statement that failed while the effects of the ones before it stay in the namespace;
and a statement can be interrupted without losing the others' work.

Output: the worker's file descriptors 1 and 2 point at spool files, and `sys.stdout` /
`sys.stderr` write through to them, so Python's prints and whatever child processes
or C code write land in one file per stream, in the order they were written. After
each statement the new part of each spool is read back. Python-level writes are capped
per block so a runaway `while True: print(...)` cannot fill the disk before its timeout.
"""

from __future__ import annotations

import ast
import dataclasses
import io
import linecache
import os
import reprlib
import sys
import time
import traceback
import types
from collections.abc import Callable

from llmtools.runtime import limits, outputs
from llmtools.runtime.results import BlockError, LocalVariable, ResultValue, block_error

# Bytes of each stream kept per block; the rest is counted, not stored. The model sees
# far less than this (llm-exec truncates what it shows), but `--eval` and result()
# may legitimately produce a lot.
CAPTURE_LIMIT = 1 << 20
# Longest repr kept for the value of an expression statement (and of result() values).
VALUE_LIMIT = 100_000
# `--eval` prints its value for the user, so it may be much longer.
EVAL_VALUE_LIMIT = 16 << 20
LOCALS_SHOWN = 40

# Frames from this package are the machinery, not the user's code: tracebacks omit them.
_RUNTIME_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


@dataclasses.dataclass
class Statement:
    index: int
    line: int
    end_line: int
    source: str
    code: types.CodeType
    is_expression: bool
    shows_value: bool  # an expression whose value is shown; `result(x)` shows as a result instead


def split_statements(code: str, filename: str) -> list[Statement]:
    """Parse a block into separately compiled top-level statements; SyntaxError as Python raises it."""
    tree = ast.parse(code, filename=filename)
    lines = code.splitlines(keepends=True)
    statements = []
    for index, node in enumerate(tree.body):
        decorators = getattr(node, "decorator_list", None) or []
        first = min([node.lineno] + [decorator.lineno for decorator in decorators])
        last = node.end_lineno or node.lineno
        if decorators or first != last:
            source = "".join(lines[first - 1:last])
        else:
            # One line may hold several statements (`a = 1; b = 2`): take just this one.
            source = ast.get_source_segment(code, node) or "".join(lines[first - 1:last])
        if isinstance(node, ast.Expr):
            compiled = compile(ast.Expression(body=node.value), filename, "eval", dont_inherit=True)
        else:
            compiled = compile(ast.Module(body=[node], type_ignores=[]), filename, "exec",
                               dont_inherit=True)
        is_expression = isinstance(node, ast.Expr)
        result_call = (isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)
                       and isinstance(node.value.func, ast.Name) and node.value.func.id == "result")
        statements.append(Statement(index, first, last, source.rstrip("\n"), compiled,
                                    is_expression, is_expression and not result_call))
    return statements


def remember_source(filename: str, code: str) -> None:
    """Let tracebacks and inspect.getsource() show code that exists only in memory."""
    # An mtime of None tells linecache.checkcache() to leave the entry alone.
    linecache.cache[filename] = (len(code), None, code.splitlines(keepends=True), filename)


# --- output -------------------------------------------------------------------


class Spool:
    """One output stream of the worker: a file on the stream's descriptor, read back per statement."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.read_budget = CAPTURE_LIMIT
        self.offset = 0
        self.dropped = 0

    def reset(self) -> None:
        # The file is open with O_APPEND (by us and by any child that inherited it), so
        # writes land at the new end after truncation; offsets restart at zero.
        os.ftruncate(self.fd, 0)
        self.offset = 0
        self.read_budget = CAPTURE_LIMIT
        self.dropped = 0

    def take_new(self) -> tuple[str, int]:
        """(text written since the last call, bytes of it dropped over the block's budget)."""
        size = os.fstat(self.fd).st_size
        new = size - self.offset
        if new <= 0:
            return "", 0
        wanted = min(new, self.read_budget)
        data = os.pread(self.fd, wanted, self.offset) if wanted else b""
        self.offset = size
        self.read_budget -= len(data)
        dropped = new - len(data)
        self.dropped += dropped
        return data.decode("utf-8", "replace"), dropped


class SpoolWriter(io.TextIOBase):
    """`sys.stdout`/`sys.stderr` in the worker: line-buffered writes straight to the spool's fd.

    Writing to the descriptor (not to a buffer of our own) keeps Python's output in order
    with output from child processes, which write to the same file. Writes past the
    block's budget are counted and dropped.
    """

    def __init__(self, fd: int, name: str) -> None:
        super().__init__()
        self._fd = fd
        self._name = name
        self._buffer = bytearray()
        self.budget = outputs.MAX_KEPT_BYTES  # to disk; what is read back is CAPTURE_LIMIT
        self.dropped = 0

    @property
    def name(self) -> str:
        return self._name

    @property  # read-only, as on io.TextIOWrapper; typeshed declares a plain attribute
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    @property  # read-only, as on io.TextIOWrapper; typeshed declares a plain attribute
    def errors(self) -> str:  # type: ignore[override]
        return "backslashreplace"

    def reset(self) -> None:
        self._buffer.clear()
        self.budget = outputs.MAX_KEPT_BYTES
        self.dropped = 0

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return self._fd

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        data = text.encode("utf-8", "backslashreplace")
        if len(data) > self.budget:
            self.dropped += len(data) - self.budget
            data = data[:self.budget]
        self.budget -= len(data)
        if data:
            self._buffer += data
            if b"\n" in data or len(self._buffer) >= 8192:
                self.flush()
        return len(text)

    def flush(self) -> None:
        while self._buffer:
            written = os.write(self._fd, self._buffer)
            del self._buffer[:written]


# --- describing values and failures ----------------------------------------------

_short = reprlib.Repr()
_short.maxstring = 80
_short.maxother = 80
_short.maxlist = _short.maxtuple = _short.maxset = _short.maxdict = 6
_short.maxlevel = 2


def short_repr(value: object) -> str:
    try:
        text = _short.repr(value)
    except Exception as error:  # noqa: BLE001 - a user's __repr__ may fail; say so, do not fail
        return f"<repr failed: {type(error).__name__}>"
    return text if len(text) <= 120 else text[:117] + "..."


def clip(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f"... [{len(text) - limit} more characters]"


def summarize_locals(namespace: dict, hidden: Callable[[str, object], bool]) -> list[LocalVariable]:
    """What the model needs to rewrite failing code: each variable's name, type and a short repr."""
    summary: list[LocalVariable] = []
    for name, value in namespace.items():
        if name.startswith("__") or hidden(name, value):
            continue
        if len(summary) == LOCALS_SHOWN:
            summary.append({"name": "...", "type": "", "repr": f"{len(namespace)} names in all"})
            break
        if isinstance(value, types.ModuleType):
            shown = f"<module {value.__name__}>"
        elif isinstance(value, (types.FunctionType, type)):
            shown = f"<{'class' if isinstance(value, type) else 'function'} {value.__qualname__}>"
        else:
            shown = short_repr(value)
        summary.append({"name": name, "type": type(value).__name__, "repr": shown})
    return summary


def user_traceback(error: BaseException) -> str:
    """The traceback without the runtime's own frames."""
    summary = traceback.TracebackException.from_exception(error, limit=-30)
    summary.stack = traceback.StackSummary.from_list(
        [frame for frame in summary.stack if not frame.filename.startswith(_RUNTIME_DIR)])
    return "".join(summary.format())


def exception_message(error: BaseException) -> str:
    return "".join(traceback.format_exception_only(type(error), error)).strip()


# --- running ----------------------------------------------------------------------


class InterruptGate:
    """Decides when a signal from the manager interrupts: only while user code runs.

    SIGINT stops the statement that is running, if one is: the manager sends it when a
    statement runs past its timeout, and one arriving between statements (the statement
    finished just in time) must neither break the worker's own loop nor the next
    statement. SIGUSR1 cancels the whole block (interrupt(), Ctrl-C): it stops the
    running statement and, however it is timed, keeps the next one from starting.
    The handlers close the gate as they raise, so a second signal cannot hit the code
    that handles the first.
    """

    def __init__(self) -> None:
        self.open = False
        self.cancellable = False  # a cancel stops what runs now (a block, not a snapshot)
        self.cancelled = False  # cleared when the worker reads its next request

    def interrupt_handler(self, signum, frame) -> None:
        if self.open:
            self.open = False
            raise KeyboardInterrupt

    def cancel_handler(self, signum, frame) -> None:
        self.cancelled = True
        if self.open and self.cancellable:
            self.open = False
            raise KeyboardInterrupt

    def enter(self, *, cancellable: bool = True) -> None:
        """Open the gate for user code; a cancel that came before stops it here.

        A snapshot enters with cancellable=False: a cancel aimed at the block that just
        ended must not throw away the snapshot of what that block did.
        """
        self.cancellable = cancellable
        self.open = True
        if self.cancelled and cancellable:
            self.open = False
            raise KeyboardInterrupt


@dataclasses.dataclass
class BlockContext:
    namespace: dict
    gate: InterruptGate
    stdout: tuple[Spool, SpoolWriter]
    stderr: tuple[Spool, SpoolWriter]
    hidden: Callable[[str, object], bool]
    take_results: Callable[[], list[ResultValue]]
    emit: Callable[[dict], None]


def _value_text(value: object, for_eval: bool) -> str:
    if for_eval:
        text = value if isinstance(value, str) else repr(value)
        return clip(text, EVAL_VALUE_LIMIT)
    return clip(repr(value), VALUE_LIMIT)


def _collect_output(context: BlockContext, info: dict) -> None:
    for key, (spool, writer) in (("stdout", context.stdout), ("stderr", context.stderr)):
        writer.flush()
        start = spool.offset
        text, dropped = spool.take_new()
        info[key] = text
        if dropped:
            info[f"{key}_dropped_bytes"] = dropped
        kept = outputs.keep(spool.fd, start, spool.offset)  # the whole of a large output, for paging
        if kept is not None:
            info[f"{key}_kept"] = kept


def run_statement(statement: Statement, context: BlockContext, *, for_eval: bool = False) -> dict:
    """Run one statement; return what it printed, its value and its error, as plain data."""
    gate = context.gate
    started = time.perf_counter()
    value_text = value_type = None
    error: BaseException | None = None
    try:
        gate.enter()
        if statement.is_expression:
            value = eval(statement.code, context.namespace)
            if value is not None and (statement.shows_value or for_eval):
                # repr() runs user code too (a __repr__), so it stays inside the gate.
                value_text, value_type = _value_text(value, for_eval), type(value).__name__
        else:
            exec(statement.code, context.namespace)  # noqa: S102 - running it is the point
        gate.open = False
    except BaseException as raised:  # noqa: BLE001 - everything the user's code raises is reported
        gate.open = False
        error = raised
    duration = time.perf_counter() - started
    info: dict = {
        "index": statement.index,
        "line": statement.line,
        "source": statement.source,
        "status": "ok",
        "duration_s": round(duration, 6),
        "value": value_text,
    }
    if value_type is not None:
        info["value_type"] = value_type
    _collect_output(context, info)
    info["results"] = context.take_results()
    if error is not None:
        info["status"] = "interrupted" if isinstance(error, KeyboardInterrupt) else "error"
        info["error"] = describe_error(error, statement, context)
    return info


def describe_error(error: BaseException, statement: Statement, context: BlockContext) -> BlockError:
    message = exception_message(error)
    if isinstance(error, SystemExit):
        message = (f"SystemExit({error.code!r}): the code tried to exit; the runtime keeps "
                   "running (use result() to return a value, or just stop)")
    fired = limits.which_limit(error)
    if fired is not None:
        message = f"{message}: {fired[1]}"
    line = statement.line
    tb = error.__traceback__
    while tb is not None:  # the deepest frame that is in this block's code
        if tb.tb_frame.f_code.co_filename == statement.code.co_filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    described = block_error(
        type(error).__name__, message, statement=statement.source, index=statement.index,
        line=line,
        traceback=user_traceback(error) if not isinstance(error, KeyboardInterrupt) else "",
        local_variables=summarize_locals(context.namespace, context.hidden))
    if fired is not None:
        described["limit"] = fired[0]
        described["traceback"] = described["traceback"].rstrip("\n") + f"\nLimit: {fired[1]}\n"
    return described


def syntax_error_info(error: SyntaxError, code: str) -> BlockError:
    lines = code.splitlines()
    line = error.lineno or 0
    text = lines[line - 1] if 0 < line <= len(lines) else (error.text or "").rstrip("\n")
    return block_error(type(error).__name__, exception_message(error), statement=text, line=line,
                       traceback="".join(traceback.format_exception_only(type(error), error)))


def run_block(code: str, filename: str, context: BlockContext, *, for_eval: bool = False) -> dict:
    """Run every statement until one fails; emit progress; return the block's summary.

    Emits {"event": "block", "statements_total": n} once parsed, {"event": "statement", ...}
    as each statement starts (the manager times each one from there) and
    {"event": "statement_done", "statement": info, "error": ...} as it ends, so that
    whatever happens to the worker later, the manager has what ran until then.
    """
    for spool, writer in (context.stdout, context.stderr):
        writer.flush()
        spool.reset()
        writer.reset()
    # Earlier code may have replaced sys.stdout (contextlib.redirect_stdout left open, a
    # library's wrapper); output must be captured again from here on.
    use_stdio(context.stdout[1], context.stderr[1])
    try:
        statements = split_statements(code, filename)
    except SyntaxError as error:
        return {"statements_total": 0, "error": syntax_error_info(error, code)}
    except (ValueError, RecursionError, MemoryError) as error:  # null bytes, absurd nesting
        return {"statements_total": 0,
                "error": block_error(type(error).__name__, exception_message(error))}
    remember_source(filename, code)
    context.emit({"event": "block", "statements_total": len(statements)})
    failure = None
    for statement in statements:
        context.emit({"event": "statement", "index": statement.index, "line": statement.line,
                      "source": statement.source})
        info = run_statement(statement, context, for_eval=for_eval)
        failure = info.pop("error", None)
        context.emit({"event": "statement_done", "statement": info, "error": failure})
        if failure is not None:
            break
    # Output not read back: past the read-back cap (large outputs are kept whole on disk,
    # runtime/outputs.py) or past the Python-level cap.
    dropped = {name: writer.dropped + spool.dropped for name, (spool, writer) in
               (("stdout", context.stdout), ("stderr", context.stderr)) if writer.dropped + spool.dropped}
    summary: dict = {"statements_total": len(statements), "error": failure}
    if dropped:
        summary["dropped_bytes"] = dropped
    return summary


def use_stdio(stdout: SpoolWriter, stderr: SpoolWriter) -> None:
    sys.stdout, sys.stderr = stdout, stderr
