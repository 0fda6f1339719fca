"""A bubblewrapped worker's processes, seen from outside: which pid is the worker itself
(signals go there, not to bwrap), and the pids cgroup that bounds what it may start.
Linux /proc and cgroup files only; used by `runtime.spawn`."""

from __future__ import annotations

import os

# --- which process is the worker ------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as children:
            return [int(child) for child in children.read().split()]
    except (OSError, ValueError):
        return []


def _namespace_pid(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("NSpid:"):
                    return int(line.split()[-1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def outer_pid(bwrap_pid: int, inner_pid: int) -> int | None:
    """The pid (as we see it) of the process bubblewrap started whose own pid is
    `inner_pid` in its namespace: signals for the worker go there, not to bwrap."""
    pending, seen = _children(bwrap_pid), 0
    while pending and seen < 64:
        pid = pending.pop(0)
        seen += 1
        if _namespace_pid(pid) == inner_pid:
            return pid
        pending += _children(pid)
    return None


# --- a process limit root cannot ignore --------------------------------------------------------
# The kernel never applies RLIMIT_NPROC to root, so where we may (root, or a delegated
# cgroup) a worker and all it starts go into a pids cgroup of their own.

PIDS_CGROUP_ROOTS = ("/sys/fs/cgroup/pids", "/sys/fs/cgroup")


def pids_cgroup(name: str, limit: int) -> str | None:
    """A new pids cgroup allowing `limit` processes, or None where we cannot make one."""
    for root in PIDS_CGROUP_ROOTS:
        if not os.path.exists(os.path.join(root, "pids.max")) and root != PIDS_CGROUP_ROOTS[0]:
            continue  # cgroup v2 without the pids controller in our reach
        if not os.access(root, os.W_OK):
            continue
        path = os.path.join(root, "llmtools", name)
        _sweep(os.path.dirname(path))
        try:
            os.makedirs(path, exist_ok=True)
            with open(os.path.join(path, "pids.max"), "w") as handle:
                handle.write(str(limit))
        except OSError:
            remove_cgroup(path)
            continue
        return path
    return None


def _sweep(parent: str) -> None:
    """Remove the cgroups of managers that died without removing theirs (named PID-...)."""
    try:
        names = os.listdir(parent)
    except OSError:
        return
    for name in names:
        owner = name.split("-", 1)[0]
        if owner.isdigit() and not os.path.exists(f"/proc/{owner}"):
            remove_cgroup(os.path.join(parent, name))


def join_cgroup(path: str, pids: list[int]) -> bool:
    try:
        for pid in pids:
            with open(os.path.join(path, "cgroup.procs"), "w") as handle:
                handle.write(str(pid))
    except OSError:
        return False
    return True


def remove_cgroup(path: str | None) -> None:
    if path:
        try:
            os.rmdir(path)
        except OSError:
            pass


def descendants(pid: int) -> list[int]:
    found: list[int] = []
    pending = [pid]
    while pending and len(found) < 64:
        current = pending.pop(0)
        found.append(current)
        pending += _children(current)
    return found
