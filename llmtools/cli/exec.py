"""`llm-exec`: the model writes prose and Python; a persistent runtime runs the Python.

stdout gets the model's prose as it streams (all turns, code blocks left out), so the
final answer ends up there and `llm-exec "..." > answer.md` keeps just the words.
stderr shows each <helpers> block as it is written and the <helpers_result> the model
gets back, exactly as the model sees them (`-q` hides them). `-S` writes the whole
exchange as a stack instead: the task, the assistant turns with their blocks, the
result turns.
"""

from __future__ import annotations

import contextlib
import secrets
import sys

import click

from llmtools import __version__
from llmtools.cli.main import debug_option, run
from llmtools.cli.options import model_options
from llmtools.cli.output import OUTPUT_FORMATS, TextWriter, echo, read_stdin_messages, write_stack

DEFAULT_TIMEOUT = 120.0
DEFAULT_MAX_STEPS = 10
DEFAULT_MAX_ERRORS = 3
DEFAULT_MAX_OUTPUT = 8000

_in_process_warned = False


# --- settings ----------------------------------------------------------------------


def _setting(flag, key: str, default, kind):
    """flag > [exec] in config.toml > default (`llmtools.config.setting`)."""
    from llmtools.config import setting

    return setting(key, default, flag=flag, table="exec", kind=kind, positive=True)


# --- runtimes ------------------------------------------------------------------------


def connect_runtimes(thread_named: str | None):
    """(runtimes, owned): the daemon's, or an in-process RuntimeManager we must close."""
    from llmtools import services

    runtimes, owned = services.runtimes()
    if not owned:
        return runtimes, False
    global _in_process_warned
    if thread_named and not _in_process_warned:
        from llmtools.notices import warn

        warn(f"no daemon: thread {thread_named!r} runs inside this process; only its variables "
             "that can be pickled carry over to the next call (restored from a snapshot)")
        _in_process_warned = True
    return runtimes, True


# --- showing the work on stderr ----------------------------------------------------------


class WorkDisplay:
    """Code blocks and their results on stderr, as the model sees them; dimmed on a terminal."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.styled = sys.stderr.isatty()
        self.in_code = False
        self.code_ends_line = True

    def _write(self, text: str) -> None:
        if self.quiet or not text:
            return
        sys.stderr.write(f"\x1b[2m{text}\x1b[0m" if self.styled else text)
        sys.stderr.flush()

    def code(self, text: str) -> None:
        if not self.in_code:
            self._write("<helpers>")
            self.in_code = True
        self._write(text)
        self.code_ends_line = text.endswith("\n")

    def end_code(self, code: str) -> None:
        if not self.in_code:  # an empty block still shows as one
            self._write("<helpers>\n" + code)
            self.code_ends_line = code.endswith("\n") or not code
        self._write(("" if self.code_ends_line else "\n") + "</helpers>\n")
        self.in_code = False

    def result(self, feedback: str) -> None:
        self._write(f"<helpers_result>\n{feedback}\n</helpers_result>\n")

    def thinking(self, text: str) -> None:
        self._write(text)

    def note(self, text: str) -> None:
        self._write(f"[{text}]\n")


class Terminal:
    """/dev/tty, for questions: stdin may be the task's data and stdout a pipe."""

    def __init__(self) -> None:
        from llmtools.errors import UsageError

        try:
            # Two handles: a tty cannot be opened "r+" in text mode (it is not seekable).
            self.reader = open("/dev/tty", encoding="utf-8", errors="replace")  # noqa: SIM115
            self.writer = open("/dev/tty", "w", encoding="utf-8", errors="replace")  # noqa: SIM115
        except OSError:
            raise UsageError("--confirm needs a terminal to ask on, and /dev/tty cannot be "
                             "opened") from None

    def ask(self, text: str) -> str:
        self.writer.write(text)
        self.writer.flush()
        return self.reader.readline()

    def close(self) -> None:
        self.reader.close()
        self.writer.close()


def tty_confirm(show_code: bool):
    """A confirm function asking on /dev/tty; the Terminal to close."""
    from llmtools import codeact

    tty = Terminal()

    def confirm(code: str) -> str:
        shown = f"<helpers>\n{code}</helpers>\n" if show_code else ""  # not on this terminal yet
        answer = tty.ask(shown + "Run this block? [y]es, [N]o (tell the model), [q]uit: ")
        if not answer:  # end of file: nobody to say yes
            return codeact.QUIT
        word = answer.strip().lower()
        if word in ("y", "yes"):
            return codeact.RUN
        if word in ("q", "quit"):
            return codeact.QUIT
        return codeact.SKIP

    return confirm, tty


# --- the command --------------------------------------------------------------------------


def _evaluate(runtimes, thread_id: str, expression: str, timeout: float) -> None:
    from llmtools.errors import LlmtoolsError

    answer = runtimes.evaluate(thread_id, expression, timeout=timeout)
    if answer.get("stdout"):
        with contextlib.suppress(BrokenPipeError):
            sys.stdout.write(answer["stdout"])
            sys.stdout.flush()
    if answer.get("stderr"):
        sys.stderr.write(answer["stderr"])
    if answer.get("restarted"):
        from llmtools.notices import warn

        warn("the runtime had to be restarted; variables were restored from its last snapshot")
    if not answer["ok"]:
        error = answer["error"]
        message = error["message"]
        if not message.startswith(error["type"]):
            message = f"{error['type']}: {message}"
        raise LlmtoolsError(message)
    if answer.get("value") is not None:
        echo(answer["value"])


STOP_MESSAGES = {
    "step_limit": "stopped: the model still wanted to run code after {max_steps} blocks "
                  "(--max-steps)",
    "error_limit": "stopped: the model still wanted to run code after {max_errors} failed "
                   "blocks in a row (--max-errors)",
    "quit": "stopped: a block was not run (--confirm)",
}


@click.command("llm-exec", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("task", nargs=-1)
@model_options(timeout_flag="--model-timeout")
@click.option("-s", "--system", metavar="TEXT", help="Extra system instructions (after llm-exec's own).")
@click.option("-p", "--path", "paths", multiple=True, metavar="PATH|GLOB|URL",
              help="File, directory, glob or URL to include; repeatable. '!GLOB' right after "
                   "excludes matches.")
@click.option("-t", "--context", multiple=True, metavar="TEXT",
              help="Extra context message, before the task; repeatable.")
@click.option("--thread", metavar="ID",
              help="Runtime to use: its variables, functions and imports persist across calls. "
                   "Default: a fresh one, discarded at the end.")
@click.option("--eval", "expression", metavar="EXPR",
              help="Evaluate EXPR in the thread's runtime and print its value; no model call.")
@click.option("--reset", is_flag=True, help="Forget the thread's runtime first (alone: just that).")
@click.option("--timeout", "statement_timeout", type=click.FloatRange(0, min_open=True),
              metavar="SECONDS", help=f"Longest a statement may run [default {DEFAULT_TIMEOUT:g}].")
@click.option("--max-steps", type=click.IntRange(1), metavar="N",
              help=f"Most code blocks to run [default {DEFAULT_MAX_STEPS}].")
@click.option("--max-errors", type=click.IntRange(1), metavar="N",
              help=f"Failed blocks in a row before the model must answer [default {DEFAULT_MAX_ERRORS}].")
@click.option("--memory-mb", type=click.IntRange(64), metavar="MB",
              help="Address-space limit of the runtime process [default: none].")
@click.option("--max-output", type=click.IntRange(200), metavar="CHARS",
              help=f"Most output characters per block shown to the model [default {DEFAULT_MAX_OUTPUT}].")
@click.option("--confirm", is_flag=True, help="Show each block and ask on the terminal before running it.")
@click.option("-q", "--quiet", is_flag=True, help="Do not show code and results on stderr.")
@click.option("-S", "--stack", "as_stack", is_flag=True,
              help="Write the whole exchange as a message stack (JSON lines) instead of the prose.")
@click.option("-o", "--output", "output_format", type=click.Choice(OUTPUT_FORMATS),
              help="text (default) or jsonl (same as -S).")
@click.option("-n", "--no-log", is_flag=True, help="Do not log the model calls.")
@click.version_option(__version__, "--version", prog_name="llmtools", message="%(prog)s %(version)s")
@debug_option
def exec_command(task, model, temperature, max_tokens, thinking, model_timeout, system, paths, context,
                 thread, expression, reset, statement_timeout, max_steps, max_errors, memory_mb,
                 max_output, confirm, quiet, as_stack, output_format, no_log):
    """Do TASK by letting the model write and run Python, step by step.

    \b
      llm-exec "How many lines of Python are under src/?"
      llm-exec --thread t1 "Define fib(n) and compute fib(30)"
      llm-exec --thread t1 --eval "fib(31)"
      curl -s https://example.com | llm-exec "List the links in this page"

    The model writes code in <helpers> blocks; each runs statement by statement in a
    persistent Python runtime (one per --thread, kept by the daemon) and the output goes
    back to the model, until it answers. See llm-exec(1) for the helpers it can call.
    """
    from llmtools import ask, codeact
    from llmtools.errors import LlmtoolsError, ServiceUnavailable, UsageError
    from llmtools.notices import warn

    timeout = _setting(statement_timeout, "timeout", DEFAULT_TIMEOUT, float)
    thread_id = thread or f"exec-{secrets.token_hex(6)}"
    if expression is not None and (task or paths or context):
        raise UsageError("--eval takes an expression and no task")
    if reset and not thread:
        raise UsageError("--reset needs --thread ID")
    stdin_messages = [] if expression is not None else read_stdin_messages()
    only_reset = reset and not (task or paths or context or stdin_messages) and expression is None

    runtimes, owned = connect_runtimes(thread)
    stack_output = as_stack or output_format == "jsonl"
    loop = None
    messages: list[dict] = []
    tty = None
    try:
        if reset:
            runtimes.reset(thread_id)
        if only_reset:
            return
        if expression is not None:
            _evaluate(runtimes, thread_id, expression, timeout)
            return

        prepared = ask.prepare(
            ask.PromptParts(prompt=" ".join(task) or None, system=system, paths=list(paths),
                            context=list(context), stdin_messages=stdin_messages),
            model=model, timeout=model_timeout, thinking=thinking)
        for warning in prepared.warnings:
            warn(warning)
        spec, messages, conversation_id = prepared.spec, prepared.request.messages, prepared.conversation_id
        settings = codeact.Settings(
            thread_id=thread_id,
            max_steps=int(_setting(max_steps, "max_steps", DEFAULT_MAX_STEPS, int)),
            max_errors=int(_setting(max_errors, "max_errors", DEFAULT_MAX_ERRORS, int)),
            statement_timeout=timeout,
            memory_mb=_setting(memory_mb, "memory_mb", None, int),
            max_output_chars=int(_setting(max_output, "max_output", DEFAULT_MAX_OUTPUT, int)),
            log=not no_log, temperature=temperature, max_tokens=max_tokens,
            thinking=prepared.request.thinking)

        display = WorkDisplay(quiet)
        confirm_function = None
        if confirm:
            confirm_function, tty = tty_confirm(show_code=quiet or not sys.stderr.isatty())
        helpers_doc, helper_errors, first = codeact.fetch_helpers_doc(runtimes, thread_id, timeout)
        if (first.get("error") or {}).get("type") == "RuntimeUnavailable":
            raise ServiceUnavailable(first["error"]["message"])  # nothing could run the code
        for problem in helper_errors:
            warn(problem)
        restored = first.get("restored") or {}
        if restored.get("names") and thread:
            display.note(f"thread {thread}: restored {', '.join(restored['names'])} from its snapshot")

        loop = codeact.CodeActLoop(spec, messages, runtimes, settings, helpers_doc=helpers_doc,
                                   confirm=confirm_function, conversation_id=conversation_id)
        writer = None if stack_output else TextWriter()
        thinking_open = False
        try:
            for event in loop.run():
                if isinstance(event, codeact.Thinking):
                    display.thinking(event.text)
                    thinking_open = True
                    continue
                if thinking_open:
                    display.thinking("\n")
                    thinking_open = False
                if isinstance(event, codeact.Prose):
                    if writer is not None:
                        writer.write(event.text)
                elif isinstance(event, codeact.CodeText):
                    if writer is not None and writer.wrote and writer.last_char != "\n":
                        writer.write("\n")  # the prose line ends where the code begins
                    display.code(event.text)
                elif isinstance(event, codeact.BlockReady):
                    display.end_code(event.code)
                elif isinstance(event, codeact.BlockFinished):
                    display.result(event.feedback)
                elif isinstance(event, codeact.BlockSkipped):
                    if event.feedback is not None:
                        display.result(event.feedback)
                    else:
                        display.note(f"block {event.step} not run ({event.reason.replace('_', ' ')})")
        finally:
            if writer is not None:
                writer.close()
        if loop.stop_reason in STOP_MESSAGES:
            raise LlmtoolsError(STOP_MESSAGES[loop.stop_reason].format(
                max_steps=settings.max_steps, max_errors=settings.max_errors))
    finally:
        try:
            if stack_output and loop is not None and (loop.transcript or messages):
                write_stack([*messages, *loop.transcript])
        finally:
            if tty is not None:
                tty.close()
            if not thread:
                with contextlib.suppress(Exception):
                    runtimes.reset(thread_id)  # a throwaway runtime: its worker and snapshot go
            if owned:
                runtimes.close()


command = exec_command  # the name every cli module gives its click command


def main() -> None:
    from llmtools.inputs import group_exclusions

    run(exec_command, group_exclusions(sys.argv[1:]), prog_name="llm-exec")


if __name__ == "__main__":
    main()
