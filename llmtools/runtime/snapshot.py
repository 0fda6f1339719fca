"""A thread's namespace saved to disk, so a worker that had to be killed can be replaced.

The worker saves one after every block (after answering, so the caller does not wait
for it) and a new worker for the same thread loads it before running anything. That
covers a worker killed for a runaway statement, one that died (os._exit, a crash in C
code, the kernel's OOM killer), and a daemon or llm-exec process that was restarted.

cloudpickle saves what plain pickle cannot: functions, lambdas and classes defined at
runtime, by value. Modules are saved by name and imported again. What cannot be pickled
at all (open files, sockets, generators, locks) is left out and listed, so the caller
can tell the model which names were lost.

A snapshot is a pickle, and loading a pickle runs code: snapshots live in a directory
only their owner can write (see RuntimeManager), never anywhere shared.
"""

from __future__ import annotations

import contextlib
import io
import os
import pickle
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

FORMAT = 1
# A snapshot runs between blocks, while the model writes the next one; a time budget
# bounds it when a value is huge or its __reduce__ never returns. A value that takes
# longer than a fifth of the budget on its own is left out (and not tried again while
# the name holds it).
DEFAULT_BUDGET = 10.0


class TooSlow(Exception):
    pass


@contextlib.contextmanager
def _time_limit(seconds: float | None):
    """Raise TooSlow in this (main) thread after `seconds`, via SIGALRM; no-op elsewhere."""
    if not seconds or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum, frame):
        raise TooSlow()

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _dumps(values: dict, namespace: dict) -> bytes:
    import cloudpickle

    buffer = io.BytesIO()
    pickler = cloudpickle.Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL)
    # Functions defined in the runtime have the namespace as their globals. cloudpickle
    # gives every function it saves a fresh globals dict of its own, so after a restore a
    # function that reads or assigns a global would see a private copy, not the
    # variables the next block sees. Telling its pickler that the namespace *is* the
    # dict being saved makes those functions come back with the restored namespace as
    # their globals. (globals_ref is cloudpickle's own memo of globals dicts; if a
    # future version drops it, functions still restore, with private globals.)
    globals_memo = getattr(pickler, "globals_ref", None)
    if isinstance(globals_memo, dict):
        globals_memo[id(namespace)] = values
    pickler.dump(values)
    return buffer.getvalue()


def _reason(error: BaseException) -> str:
    text = f"{type(error).__name__}: {error}"
    return text if len(text) <= 200 else text[:197] + "..."


def save(namespace: dict, path: Path, *, hidden: Callable[[str, object], bool], extra: dict,
         too_slow: dict[str, int] | None = None, budget: float = DEFAULT_BUDGET) -> dict:
    """Write the namespace's picklable variables to `path` atomically; report what was left out.

    `hidden(name, value)` marks what is not the user's (the helpers), which a new worker
    installs itself. Dunder names are the runtime's, never saved. `too_slow` maps names
    to the id() of values that took too long before; it is updated, and those are skipped.
    """
    started = time.perf_counter()
    too_slow = {} if too_slow is None else too_slow
    name_budget = budget / 5
    slow_reason = f"pickling took longer than {name_budget:g} s"
    candidates, skipped = {}, []
    for name, value in namespace.items():
        if name.startswith("__") or hidden(name, value):
            continue
        if too_slow.get(name) == id(value):
            skipped.append({"name": name, "reason": slow_reason})
        else:
            candidates[name] = value
    try:
        with _time_limit(budget):
            payload = _dumps(candidates, namespace)
    except Exception:  # noqa: BLE001 - pickling fails in too many ways to list
        # Find the culprits one by one, then save the rest together (together, so that
        # two names for one object stay one object).
        import cloudpickle

        kept = {}
        for name, value in candidates.items():
            try:
                with _time_limit(name_budget):
                    cloudpickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
            except TooSlow:
                too_slow[name] = id(value)
                skipped.append({"name": name, "reason": slow_reason})
                continue
            except Exception as error:  # noqa: BLE001 - recorded as the reason it was left out
                skipped.append({"name": name, "reason": _reason(error)})
                continue
            kept[name] = value
        with _time_limit(budget):
            payload = _dumps(kept, namespace)
        candidates = kept
    document = {"format": FORMAT, "created": time.time(), "namespace": payload,
                "skipped": skipped, **extra}
    data = pickle.dumps(document, protocol=pickle.HIGHEST_PROTOCOL)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return {"saved": sorted(candidates), "skipped": skipped, "bytes": len(data),
            "seconds": round(time.perf_counter() - started, 6)}


def load(path: Path) -> tuple[dict, dict]:
    """(variables, the document's other fields). Raises whatever unpickling raises."""
    document = pickle.loads(path.read_bytes())
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ValueError(f"{path} is not a runtime snapshot this version can read")
    values = pickle.loads(document.pop("namespace"))
    return values, document
