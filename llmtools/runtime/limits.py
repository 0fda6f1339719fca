"""Resource limits inside a worker, and saying which one stopped a statement.

The manager sends the limits with `init` (see sandbox.default_limits for the defaults):
open files (RLIMIT_NOFILE), file size (RLIMIT_FSIZE), processes (RLIMIT_NPROC, counted
per user by the kernel, so set above what the user already runs; the kernel ignores it
for root, for whom the manager uses a pids cgroup where it can), and CPU seconds per
block (RLIMIT_CPU's soft limit moved on at each block; SIGXCPU then stops the running
statement like a timeout does). The address-space limit (RLIMIT_AS) is set per block by
the worker (`memory_mb`).

A statement stopped by a limit fails with an ordinary error the model can read, and the
worker lives on, so the thread's other variables stay.
"""

from __future__ import annotations

import errno
import os
import resource
import signal
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from llmtools.runtime.execution import InterruptGate

CURRENT: dict[str, int] = {}

# Each limit's key in config.toml's [exec] table, and llm-exec's flag for it where it has one.
CONFIG_KEYS = {"memory_mb": "memory_mb", "cpu_s": "cpu_seconds", "processes": "max_processes",
               "open_files": "max_open_files", "file_mb": "max_file_mb"}
FLAGS = {"memory_mb": "--memory-mb", "cpu_s": "--cpu-seconds", "processes": "--max-processes"}
# How the model is told to name a limit to the user.
SETTING_NAMES = {key: f"{FLAGS[key]} / [exec] {name}" if key in FLAGS else f"[exec] {name} in config.toml"
                 for key, name in CONFIG_KEYS.items()}


class CpuLimitExceeded(BaseException):
    """The block used up its CPU seconds (a BaseException, like KeyboardInterrupt, so
    that `except Exception` in the code does not swallow it)."""


def _user_processes() -> int:
    uid = os.getuid()
    count = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                count += os.stat(f"/proc/{entry}").st_uid == uid
            except OSError:
                pass
    return count


def _lower(kind: int, value: int) -> None:
    soft, hard = resource.getrlimit(kind)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    try:
        resource.setrlimit(kind, (value, hard))
    except (ValueError, OSError):
        pass


def apply_fixed(limits: dict) -> None:
    """The limits that hold for the worker's whole life."""
    CURRENT.clear()
    CURRENT.update({key: int(value) for key, value in limits.items() if isinstance(value, int)})
    if "open_files" in CURRENT:
        _lower(resource.RLIMIT_NOFILE, CURRENT["open_files"])
    if "file_mb" in CURRENT:
        _lower(resource.RLIMIT_FSIZE, CURRENT["file_mb"] << 20)
    if "processes" in CURRENT and os.getuid() != 0:
        _lower(resource.RLIMIT_NPROC, _user_processes() + CURRENT["processes"])


def _cpu_used() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def start_block_clock() -> None:
    """This block may use `cpu_s` more CPU seconds than the worker has used so far."""
    seconds = CURRENT.get("cpu_s")
    if seconds:
        _lower(resource.RLIMIT_CPU, int(_cpu_used()) + seconds + 1)


def install_handlers(gate: InterruptGate) -> None:
    def over_cpu(signum, frame) -> None:
        # The kernel repeats SIGXCPU every second past the soft limit: move it on, so the
        # failure can be reported and the next block starts with its own budget.
        _lower(resource.RLIMIT_CPU, int(_cpu_used()) + 60)
        if gate.open:
            gate.open = False
            raise CpuLimitExceeded(f"the block used its {CURRENT.get('cpu_s')} CPU seconds")

    signal.signal(signal.SIGXCPU, over_cpu)
    # A write past RLIMIT_FSIZE then fails with EFBIG instead of killing the worker.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


def which_limit(error: BaseException) -> tuple[str, str] | None:
    """(limit, sentence for the model and the user) when `error` is a limit firing."""
    if isinstance(error, CpuLimitExceeded):
        key, what = "cpu_s", f"CPU time limit ({CURRENT.get('cpu_s')} s per block)"
    elif isinstance(error, MemoryError):
        key, what = "memory_mb", f"memory limit ({CURRENT.get('memory_mb')} MB of address space)"
    elif isinstance(error, OSError) and error.errno == errno.EMFILE:
        key, what = "open_files", f"open-files limit ({CURRENT.get('open_files')})"
    elif isinstance(error, OSError) and error.errno == errno.EFBIG:
        key, what = "file_mb", f"file-size limit ({CURRENT.get('file_mb')} MB)"
    elif isinstance(error, OSError) and error.errno == errno.EAGAIN and _about_processes(error):
        key, what = "processes", f"process limit ({CURRENT.get('processes')} processes)"
    else:
        return None
    if key not in CURRENT:
        return None
    return key, (f"stopped by the runtime's {what}; the thread's other variables are kept. "
                 f"Use less, or ask the user to raise it ({SETTING_NAMES[key]})")


def _about_processes(error: OSError) -> bool:
    tb = error.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_name in ("fork", "_fork_exec", "_execute_child", "fork_exec", "start"):
            return True
        tb = tb.tb_next
    return "fork" in str(error).lower() or error.filename is None
