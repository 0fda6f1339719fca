"""`llm daemon start|stop|restart|status|run`: manage the per-user daemon."""

from __future__ import annotations

import json

import click

from llmtools.cli.options import debug_option
from llmtools.cli.output import echo
from llmtools.errors import ExitStatus


@click.group("daemon")
@debug_option
def daemon_group() -> None:
    """Manage the daemon that keeps models, runtimes and the browser warm.

    Commands start it on demand; it exits by itself after an idle timeout
    (daemon_idle_timeout in config.toml, LLMTOOLS_DAEMON_IDLE_TIMEOUT; default 1800 s).
    """


@daemon_group.command("start")
@debug_option
def start_command() -> None:
    """Start the daemon (nothing happens if it is running)."""
    from llmtools.services import daemon_control

    daemon = daemon_control()
    client = daemon.DaemonClient()
    failure = client.start()
    if failure is not None:
        daemon.raise_for_error(failure)
    echo(f"daemon running (pid {client.pid()}, socket {client.socket_path})")


@daemon_group.command("stop")
@debug_option
def stop_command() -> None:
    """Stop the daemon and wait until it has exited."""
    from llmtools.services import daemon_control

    daemon = daemon_control()
    pid = daemon.DaemonClient().stop()  # a daemon that does not answer is killed
    echo(f"daemon stopped (pid {pid})" if pid else "daemon was not running")


@daemon_group.command("restart")
@debug_option
def restart_command() -> None:
    """Stop the daemon if it runs, then start a fresh one."""
    from llmtools.services import daemon_control

    daemon = daemon_control()
    client = daemon.DaemonClient()
    client.stop()
    failure = client.start()
    if failure is not None:
        daemon.raise_for_error(failure)
    echo(f"daemon running (pid {client.pid()}, socket {client.socket_path})")


@daemon_group.command("status")
@click.option("--json", "as_json", is_flag=True, help="The full status as JSON.")
@debug_option
def status_command(as_json: bool) -> int:
    """Say whether the daemon runs and what it holds; exit 1 when it is not running."""
    from llmtools.services import daemon_control

    daemon = daemon_control()
    status = None
    for event in daemon.DaemonClient().request("status", silence=daemon.PING_TIMEOUT_S,
                                                 connect_timeout=daemon.PING_TIMEOUT_S):
        if event["event"] == "end":
            status = event["result"]
        elif event.get("kind") == "DaemonNotAnswering":
            daemon.raise_for_error(event)  # there, but stopped or hung: 69, saying so
    if status is None:
        echo(json.dumps({"running": False}) if as_json else "daemon not running")
        return ExitStatus.FAILURE  # "false", as a predicate: scripts test `llm daemon status`
    if as_json:
        echo(json.dumps({"running": True, **status}))
        return ExitStatus.OK
    echo(f"daemon running: pid {status['pid']}, up {status['uptime_s']:.0f}s, "
         f"{status['requests_served']} requests served, idle {status['idle_s']:.0f}s "
         f"of {status['idle_timeout_s']:g}s")
    echo(f"socket: {status['socket']}")
    pids = {row["model"]: row["pid"] for row in status.get("model_workers", [])}
    echo("warm models: " + (", ".join(f"{name} (pid {pids[name]})" if name in pids else name
                                      for name in status["warm_models"]) or "none"))
    echo("runtimes: " + (", ".join(r.get("thread", r.get("id", "?")) for r in status["runtimes"]) or "none"))
    echo("browser: " + ("running" if status["browser"] else "not started"))
    return ExitStatus.OK


@daemon_group.command("run")
@click.option("--idle-timeout", type=float, metavar="SECONDS",
              help="Exit after this long without requests (0: never).")
@debug_option
def run_command(idle_timeout: float | None) -> int:
    """Run the daemon in the foreground, logging to stderr (for debugging)."""
    from llmtools.daemon import server
    from llmtools.statedirs import paths

    idle = idle_timeout if idle_timeout is not None else server.idle_timeout_setting()
    status = server.serve(paths().runtime_dir, idle)
    if status:
        from llmtools.errors import UsageError

        raise UsageError("a daemon is already running (`llm daemon stop` first)")
    return ExitStatus.OK
