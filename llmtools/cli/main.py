"""The one entry wrapper every command runs through.

It owns what no command should repeat: Ctrl-C (exit 130), SIGTERM (exit 143), a reader
that went away (exit 141, no BrokenPipeError noise), one-line error messages with the
documented exit status (see `llmtools.errors.ExitStatus`), and `--debug` for tracebacks.

`--debug` is read here, before click parses anything, and exported as LLMTOOLS_DEBUG for
the rest of the process: the daemon client prints the traceback of a crash in the daemon
or one of its workers, sent back with the error, when that is set.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from typing import NoReturn

import click

from llmtools.errors import ExitStatus, LlmtoolsError, ReaderGone, Terminated


def _raise_terminated(signum, frame) -> NoReturn:
    raise Terminated()


def _debug_requested(argv: list[str]) -> bool:
    if os.environ.get("LLMTOOLS_DEBUG"):
        return True
    options = argv[: argv.index("--")] if "--" in argv else argv
    return "--debug" in options


def _silence_stdout() -> None:
    """Point stdout at /dev/null: after a broken pipe, so the final flush at exit is quiet;
    after the last byte, so the reader sees the end at once."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def error_line(prog: str, message: str) -> str:
    # One line: a multi-line server message must not spill a page onto the terminal.
    flat = " ".join(str(message).split())
    return f"{prog}: error: {flat}"


def run(command: click.Command, argv: list[str] | None = None, prog_name: str | None = None) -> NoReturn:
    argv = list(sys.argv[1:] if argv is None else argv)
    prog = prog_name or command.name or os.path.basename(sys.argv[0]) or "llmtools"
    from llmtools.notices import set_program_name

    set_program_name(prog)
    debug = _debug_requested(argv)
    signal.signal(signal.SIGTERM, _raise_terminated)
    with _debug_environment(debug):
        status = _invoke(command, argv, prog, debug)
    status = _unlogged_status(status)
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _silence_stdout()
        status = ExitStatus.BROKEN_PIPE
    except (OSError, ValueError):
        pass
    else:
        _end_output()
    sys.exit(int(status))


def _end_output() -> None:
    """Let the reader see the end of our output now, every byte of it written, rather than
    after the interpreter's teardown (~8 ms of freeing modules here): in a pipeline the next
    stage gets to work that much sooner. Only for the process's own stdout: a caller that
    captures it in-process (tests, CliRunner) keeps its stream."""
    if sys.stdout is sys.__stdout__:
        _silence_stdout()


def _unlogged_status(status: int) -> int:
    """NOT_LOGGED in place of success when an exchange could not be logged (the answer was
    given, with a warning). Looked up only if some code loaded the module: most never do."""
    unlogged = sys.modules.get("llmtools.unlogged")
    if unlogged is None or not unlogged.failed():
        return status
    unlogged.reset()
    return ExitStatus.NOT_LOGGED if status == ExitStatus.OK else status


@contextlib.contextmanager
def _debug_environment(debug: bool):
    """LLMTOOLS_DEBUG=1 while the command runs with --debug (restored for in-process callers)."""
    before = os.environ.get("LLMTOOLS_DEBUG")
    if debug:
        os.environ["LLMTOOLS_DEBUG"] = "1"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("LLMTOOLS_DEBUG", None)
        else:
            os.environ["LLMTOOLS_DEBUG"] = before


def _invoke(command: click.Command, argv: list[str], prog: str, debug: bool) -> int:
    """Run the command; every way it can end, mapped to the documented exit status."""
    try:
        result = command.main(args=argv, prog_name=prog, standalone_mode=False)
        sys.stdout.flush()
        return result if isinstance(result, int) else ExitStatus.OK
    except click.exceptions.Exit as exit_:
        return exit_.exit_code
    except click.exceptions.Abort:
        # click turns KeyboardInterrupt into Abort (and has already ended the line).
        return ExitStatus.INTERRUPTED
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return ExitStatus.INTERRUPTED
    except Terminated:
        return ExitStatus.TERMINATED
    except click.ClickException as error:
        if isinstance(error, click.UsageError) and error.ctx is not None:
            click.echo(error.ctx.get_usage(), err=True)
        click.echo(error_line(prog, error.format_message()), err=True)
        return error.exit_code
    except (ReaderGone, BrokenPipeError):
        _silence_stdout()
        return ExitStatus.BROKEN_PIPE
    except LlmtoolsError as error:
        if debug:
            import traceback

            traceback.print_exc()
        click.echo(error_line(prog, str(error)), err=True)
        return error.status
    except Exception as error:
        if _is_sqlite_error(error):  # the log database cannot be used: not a bug, say why
            from llmtools import unlogged
            from llmtools.statedirs import paths

            if debug:
                import traceback

                traceback.print_exc()
            click.echo(error_line(prog, f"cannot use the log: {unlogged.describe(error, paths().log_db)}"),
                       err=True)
            return ExitStatus.NOT_LOGGED
        return _internal_error(error, prog, debug)


def _is_sqlite_error(error: Exception) -> bool:
    sqlite3 = sys.modules.get("sqlite3")
    return sqlite3 is not None and isinstance(error, sqlite3.Error)


def _internal_error(error: Exception, prog: str, debug: bool) -> int:
    """A bug: say so briefly, keep the traceback for --debug."""
    if debug:
        import traceback

        traceback.print_exc()
    else:
        click.echo(
            error_line(prog, f"internal error: {type(error).__name__}: {error} "
                             "(run again with --debug for the traceback)"),
            err=True,
        )
    return ExitStatus.FAILURE
