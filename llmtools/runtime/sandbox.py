"""What model-written code may touch: the sandbox policy of a runtime worker.

A policy is plain JSON (it travels from llm-exec to the daemon with each call):

    {"mode": "workspace" | "read-only" | "off", "bwrap": "/usr/bin/bwrap",
     "cwd": "/the/caller/dir", "allow": [["/a/path", false], ["/rw/path", true]],
     "allow_net": false, "limits": {...}}

`workspace` and `read-only` run the worker under bubblewrap: the system read-only (with
its secrets masked), the home directory and everything else unseen, a private /tmp, a
per-thread work directory (HOME inside), its own PID namespace (nothing it starts
outlives it), its own network namespace (no network, not even the host's loopback) and
no capabilities. `workspace` also makes the working directory writable; `read-only`
shows it read-only. `off` runs the worker as the user, as before.

In every mode the worker's environment is scrubbed of keys, tokens, cookies and the
daemon's location, and its output is passed through `redact` before anyone sees it:
helpers that need a model or the network ask the parent process over the worker's
channel (`llmtools.runtime.channel`), and the parent holds the keys.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

MODES = ("workspace", "read-only", "off")
CONFINED = ("workspace", "read-only")

# Not part of "the system" anyone may read: password hashes, host keys, TLS keys.
ETC_SECRETS = ("/etc/shadow", "/etc/shadow-", "/etc/gshadow", "/etc/gshadow-", "/etc/sudoers",
               "/etc/sudoers.d", "/etc/ssh", "/etc/ssl/private", "/etc/security/opasswd",
               "/etc/credstore", "/etc/credstore.encrypted")
SYSTEM_DIRS = ("/usr", "/etc", "/opt", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
# Never shown by a mount that happens to contain them (running from ~, --allow-path ~):
# keys and credentials in the home directory, beside llmtools' own state (config with
# keys, the log, other threads, the daemon's socket); see `private_paths`.
HOME_SECRETS = (".ssh", ".gnupg", ".aws", ".azure", ".config/gcloud", ".kube", ".docker", ".netrc",
                ".pgpass", ".git-credentials", ".password-store", ".local/share/keyrings", ".mozilla",
                ".config/chromium", ".config/google-chrome", ".pki")

# Environment variables a worker never gets: secrets by name, and where the daemon and
# the user's state live (the socket is in LLMTOOLS_HOME/run or XDG_RUNTIME_DIR).
SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSW|CREDENTIAL|COOKIE|AUTH|SESSION|PRIVATE", re.I)
DROPPED_NAMES = frozenset({
    "LLMTOOLS_HOME", "XDG_RUNTIME_DIR", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME",
    "XDG_STATE_HOME", "SSH_AUTH_SOCK", "SSH_AGENT_PID", "GPG_AGENT_INFO", "DBUS_SESSION_BUS_ADDRESS",
    "LLMTOOLS_DEBUG_SOCKET", "KRB5CCNAME", "NETRC", "PGPASSFILE", "DOCKER_HOST"})
# What provider keys look like: redacted from a block's output before the model or the log
# sees it, whatever the code did to get one.
KEY_SHAPES = re.compile(
    r"sk-ant-[A-Za-z0-9_\-]{16,}|sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{20,}"
    r"|AIza[0-9A-Za-z_\-]{35}|gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,}"
    r"|xox[abposr]-[A-Za-z0-9\-]{10,}|hf_[A-Za-z0-9]{30,}|AKIA[0-9A-Z]{16}|gsk_[A-Za-z0-9]{30,}"
    r"|r8_[A-Za-z0-9]{30,}|pplx-[A-Za-z0-9]{30,}")
REDACTED = "[redacted key]"

DEFAULT_CPU_S = 600
DEFAULT_PROCESSES = 256
DEFAULT_OPEN_FILES = 1024
DEFAULT_FILE_MB = 4096


class SandboxUnavailable(Exception):
    """bubblewrap cannot confine a worker here; the message says why and what to do."""


# --- is bubblewrap usable here? --------------------------------------------------------


def find_bwrap() -> str | None:
    return shutil.which("bwrap")


@functools.cache
def bwrap_problem(bwrap: str | None) -> str | None:
    """Why bubblewrap cannot confine a worker here (None: it can). Asked once per process:
    one `bwrap ... true` with the namespaces a worker gets, about 10 ms."""
    if bwrap is None:
        return "bubblewrap (bwrap) is not installed or not on PATH"
    try:
        probe = subprocess.run(
            [bwrap, "--unshare-user", "--unshare-pid", "--unshare-net", "--unshare-ipc",
             "--die-with-parent", "--cap-drop", "ALL", "--ro-bind", "/", "/", "--proc", "/proc",
             "true"], stdin=subprocess.DEVNULL, capture_output=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"{bwrap} cannot run: {error}"
    if probe.returncode != 0:
        detail = probe.stderr.decode(errors="replace").strip().splitlines()
        reason = detail[-1] if detail else f"exit status {probe.returncode}"
        return f"{bwrap} cannot create namespaces here (user namespaces disabled?): {reason}"
    return None


HOW_TO_ENABLE = ("install bubblewrap (Debian/Ubuntu: apt install bubblewrap) and allow unprivileged "
                 "user namespaces (sysctl kernel.unprivileged_userns_clone=1), or run with "
                 "--sandbox off (or [exec] sandbox = \"off\") to run model code unconfined")


def choose_mode(requested: str | None) -> tuple[str, str | None, str | None]:
    """(mode, bwrap path, warning). `requested` is the flag or config value, None for the
    default: workspace where bubblewrap works, else off with a warning naming what is
    missing. An explicit confined mode that cannot work raises SandboxUnavailable."""
    if requested is not None and requested not in MODES:
        raise ValueError(f"sandbox mode must be one of {', '.join(MODES)} (got {requested!r})")
    if requested == "off":
        return "off", None, ("model code runs unsandboxed (--sandbox off): it can read and write "
                             "whatever you can, and use the network")
    bwrap = find_bwrap()
    problem = bwrap_problem(bwrap)
    if problem is None:
        return requested or "workspace", bwrap, None
    if requested is not None:
        raise SandboxUnavailable(f"cannot run model code in the {requested!r} sandbox: {problem}; "
                                 f"{HOW_TO_ENABLE}")
    return "off", None, (f"model code runs unsandboxed: {problem}; {HOW_TO_ENABLE.split(', or')[0]} "
                         "to confine it")


# --- limits ---------------------------------------------------------------------------------


def machine_memory_mb() -> int | None:
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") >> 20
    except (OSError, ValueError):
        return None


def default_memory_mb() -> int:
    """Half the machine's RAM (address space, so generous), never below 1 GiB."""
    total = machine_memory_mb()
    return max(1024, total // 2) if total else 4096


def default_limits() -> dict[str, int]:
    return {"memory_mb": default_memory_mb(), "cpu_s": DEFAULT_CPU_S, "processes": DEFAULT_PROCESSES,
            "open_files": DEFAULT_OPEN_FILES, "file_mb": DEFAULT_FILE_MB}


def limits_of(policy: dict | None) -> dict[str, int]:
    limits = default_limits()
    for key, value in ((policy or {}).get("limits") or {}).items():
        if key in limits and isinstance(value, int) and value > 0:
            limits[key] = value
    return limits


def policy(mode: str, *, bwrap: str | None = None, cwd: str | None = None,
           allow: list[tuple[str, bool]] | None = None, allow_net: bool = False,
           limits: dict[str, int] | None = None) -> dict[str, Any]:
    return {"mode": mode, "bwrap": bwrap, "cwd": cwd or os.getcwd(),
            "allow": [[str(Path(path).expanduser().resolve()), bool(writable)] for path, writable in allow or []],
            "allow_net": bool(allow_net), "limits": dict(limits or {})}


def describe(rules: dict | None) -> str:
    """What the model is told about where its code runs (after the helpers' documentation)."""
    mode = (rules or {}).get("mode")
    if mode not in CONFINED:
        return ""
    assert rules is not None
    writable = "the working directory and $HOME" if mode == "workspace" else "$HOME (a work directory)"
    network = ("The code has the network." if rules.get("allow_net") else
               "The code has no network: use download() and pdf() for URLs, llm_call() for models.")
    return (f"(Sandbox: the code can write only {writable} and /tmp; the rest of the user's files "
            f"are not visible. {network})")


def parse_allow_path(text: str) -> tuple[str, bool]:
    """`PATH` (read-only) or `PATH:rw` (writable)."""
    for suffix, writable in ((":rw", True), (":ro", False)):
        if text.endswith(suffix):
            return text[:-len(suffix)], writable
    return text, False


# --- the environment and the output -----------------------------------------------------------


def scrubbed_environment(env: dict[str, str]) -> dict[str, str]:
    """`env` without anything secret-looking or pointing at our state or the daemon."""
    return {name: value for name, value in env.items()
            if name not in DROPPED_NAMES and not SECRET_NAME.search(name)}


def secret_values(env: dict[str, str] | None = None) -> list[str]:
    """The values of this process's secret-named variables worth redacting literally."""
    env = dict(os.environ) if env is None else env
    return sorted({value for name, value in env.items()
                   if SECRET_NAME.search(name) and len(value) >= 12}, key=len, reverse=True)


def redact(text: str, secrets: list[str] = ()) -> str:  # type: ignore[assignment]
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return KEY_SHAPES.sub(REDACTED, text)


def redact_all(value: Any, secrets: list[str]) -> Any:
    """Every string inside a JSON-like value, redacted."""
    if isinstance(value, str):
        return redact(value, secrets)
    if isinstance(value, list):
        return [redact_all(item, secrets) for item in value]
    if isinstance(value, dict):
        return {key: redact_all(item, secrets) for key, item in value.items()}
    return value


# --- the bubblewrap command line -----------------------------------------------------------------


def _system_mounts() -> list[str]:
    args: list[str] = []
    for path in SYSTEM_DIRS:
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    for secret in ETC_SECRETS:
        if os.path.isdir(secret) and not os.path.islink(secret):
            args += ["--tmpfs", secret, "--remount-ro", secret]
        elif os.path.lexists(secret):
            args += ["--ro-bind", "/dev/null", secret]
    return args


def private_paths() -> list[str]:
    """What a confined worker must not see even inside a directory it may: the home's keys
    and credentials, and llmtools' state (config, log, threads, daemon socket, cache)."""
    from llmtools.statedirs import paths

    state = paths()
    home = os.path.expanduser("~")
    found = [os.path.join(home, name) for name in HOME_SECRETS]
    found += [str(path) for path in (state.config_dir, state.data_dir, state.cache_dir, state.runtime_dir)]
    return [os.path.realpath(path) for path in found if os.path.lexists(path)]


def _within(path: str, directory: str) -> bool:
    return path == directory or path.startswith(os.path.join(directory, ""))


def _hidden_inside(shown: list[str]) -> list[str]:
    """The private paths lying strictly inside a mount that shows a directory."""
    mounts = [os.path.realpath(mount) for mount in shown]
    return [private for private in private_paths()
            if any(private != mount and _within(private, mount) for mount in mounts)]


def _cover(private: str) -> list[str]:
    if os.path.isdir(private):
        return ["--tmpfs", private]  # empty, and gone with the worker
    return ["--ro-bind", "/dev/null", private]


def _python_dirs() -> list[str]:
    """What the worker's interpreter and our package need, read-only."""
    from llmtools.launch import PACKAGE_ROOT

    wanted = {sys.prefix, sys.base_prefix, sys.exec_prefix, PACKAGE_ROOT,
              os.path.dirname(os.path.realpath(sys.executable))}
    wanted.update(entry for entry in sys.path if entry and os.path.isabs(entry))
    return sorted(path for path in wanted if os.path.exists(path))


def bwrap_command(rules: dict, worker_argv: list[str], *, thread_dir: Path, work_dir: Path,
                  readable: list[str] = ()) -> list[str]:  # type: ignore[assignment]
    """The bwrap command line that runs `worker_argv` under policy `rules`."""
    bwrap = rules.get("bwrap") or find_bwrap() or "bwrap"
    # --as-pid-1: the worker itself is the namespace's init, so when it ends the kernel
    # ends everything it started (bwrap's own init would wait for them instead).
    args = [bwrap, "--unshare-user", "--unshare-pid", "--as-pid-1", "--unshare-ipc", "--unshare-uts",
            "--unshare-cgroup-try", "--cap-drop", "ALL"]
    # No --die-with-parent: its signal comes when the *thread* that started bwrap ends (a
    # daemon's request thread), not its process. The worker's lifeline pipe ends it when
    # the manager's process goes, and the PID namespace ends with the worker.
    if not rules.get("allow_net"):
        args.append("--unshare-net")
    args += _system_mounts()
    args += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--tmpfs", "/var/tmp"]
    if rules.get("allow_net") and os.path.isdir("/run/systemd/resolve"):
        args += ["--ro-bind", "/run/systemd/resolve", "/run/systemd/resolve"]
    for path in _python_dirs():
        args += ["--ro-bind-try", path, path]
    cwd = str(rules.get("cwd") or work_dir)
    shown = [cwd] if os.path.isdir(cwd) else []
    if shown:
        args += ["--bind" if rules.get("mode") == "workspace" else "--ro-bind", cwd, cwd]
    allowed = [(path, writable) for path, writable in rules.get("allow") or []]
    for path, writable in allowed:
        args += ["--bind-try" if writable else "--ro-bind-try", path, path]
    hidden = _hidden_inside([*shown, *(path for path, _ in allowed)])
    for private in hidden:
        args += _cover(private)
    # What the user named itself (-p FILE, --allow-path ~/.aws/config) stays shown, even
    # where it lies in a place just hidden; only that, not the rest of the place.
    for path, writable in allowed:
        if any(_within(os.path.realpath(path), private) for private in hidden):
            args += ["--bind-try" if writable else "--ro-bind-try", path, path]
    for path in readable:
        args += ["--ro-bind-try", path, path]
    args += ["--bind", str(thread_dir), str(thread_dir)]
    # The root bwrap builds is a tmpfs: read-only too, so nothing is written beside the mounts.
    args += ["--remount-ro", "/", "--chdir", cwd if os.path.isdir(cwd) else str(work_dir)]
    return [*args, "--", *worker_argv]


def worker_environment(env: dict[str, str], rules: dict | None, work_dir: Path) -> dict[str, str]:
    env = scrubbed_environment(env)
    env["LLMTOOLS_WORK_DIR"] = str(work_dir)
    if rules is not None and rules.get("mode") in CONFINED:
        env.update(HOME=str(work_dir), TMPDIR="/tmp")
    return env


# --- from flags and config to a policy (llm-exec) ---------------------------------------------


def _mode_name(raw) -> str:
    mode = str(raw).strip().lower()
    if mode not in MODES:
        raise ValueError(f"not one of {', '.join(MODES)}")
    return mode


def policy_from_settings(mode_flag: str | None, allow_flags: tuple[str, ...], allow_net_flag: bool,
                         limit_flags: dict[str, int | None]) -> tuple[dict[str, Any], str | None]:
    """(policy, warning) for llm-exec: each flag, else `[exec]` in config.toml (sandbox,
    allow_paths, allow_net, limits.CONFIG_KEYS), else the defaults. Raises SandboxUnavailable
    for a confined mode that cannot work here, UsageError for a bad setting."""
    from llmtools.config import load_config_cached, on_off, setting
    from llmtools.errors import UsageError
    from llmtools.runtime.limits import CONFIG_KEYS

    try:
        requested = setting("sandbox", None, flag=mode_flag, env="LLMTOOLS_SANDBOX", table="exec",
                            kind=_mode_name)
    except UsageError as error:
        raise UsageError(f"{error} (sandbox modes: {', '.join(MODES)})") from None
    section = load_config_cached().get("exec") or {}
    configured = section.get("allow_paths") or [] if isinstance(section, dict) else []
    if isinstance(configured, str) or not all(isinstance(entry, str) for entry in configured):
        raise UsageError("[exec] allow_paths in config.toml must be a list of paths (PATH or PATH:rw)")
    allow = [parse_allow_path(entry) for entry in [*configured, *allow_flags]]
    for path, _ in allow:
        if not os.path.exists(os.path.expanduser(path)):
            raise UsageError(f"--allow-path {path}: no such file or directory")
    try:
        allow_net = setting("allow_net", False, flag=True if allow_net_flag else None, table="exec", kind=on_off)
    except UsageError:
        raise UsageError("[exec] allow_net in config.toml must be true or false") from None
    limits = {key: setting(name, None, flag=limit_flags.get(key), table="exec", kind=int, positive=True)
              for key, name in CONFIG_KEYS.items()}
    mode, bwrap, warning = choose_mode(requested)
    return policy(mode, bwrap=bwrap, allow=allow, allow_net=allow_net,
                  limits={key: value for key, value in limits.items() if value is not None}), warning


class ConfinedRuntimes:
    """Runtimes (a RuntimeManager or the daemon's) whose every call carries one policy."""

    def __init__(self, runtimes, rules: dict[str, Any]) -> None:
        self.runtimes = runtimes
        self.rules = rules

    def execute(self, thread_id: str, code: str, **options):
        return self.runtimes.execute(thread_id, code, sandbox=self.rules, **options)

    def evaluate(self, thread_id: str, expression: str, **options):
        return self.runtimes.evaluate(thread_id, expression, sandbox=self.rules, **options)

    def __getattr__(self, name: str):
        return getattr(self.runtimes, name)
