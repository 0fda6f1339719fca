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

from llmtools.cli.main import run
from llmtools.cli.options import SECONDS, answer_output_options, log_option, model_options, prompt_options
from llmtools.cli.options import command as llmtools_command
from llmtools.cli.output import AnswerFormat, AnswerWriter, echo, read_stdin_messages, write_raw
from llmtools.errors import Terminated
from llmtools.terminal import write_stderr

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
        self.in_code = False
        self.code_ends_line = True

    def _write(self, text: str) -> None:
        if not self.quiet:
            write_stderr(text, dim=True)

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
        write_raw(answer["stdout"])
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


@llmtools_command("llm-exec")
@click.argument("task", nargs=-1)
@model_options
@prompt_options(system_help="Extra system instructions (after llm-exec's own).", subject="task")
@click.option("--thread", metavar="ID",
              help="Runtime to use: its variables, functions and imports persist across calls. "
                   "Default: a fresh one, discarded at the end.")
@click.option("--eval", "expression", metavar="EXPR",
              help="Evaluate EXPR in the thread's runtime and print its value; no model call.")
@click.option("--reset", is_flag=True, help="Forget the thread's runtime first (alone: just that).")
@click.option("--statement-timeout", type=SECONDS, metavar="SECONDS",
              help=f"Longest a statement may run [default {DEFAULT_TIMEOUT:g}].")
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
@answer_output_options(stack_help="Write the whole exchange as a message stack (JSON lines) instead of the prose.")
@log_option("Do not log the model calls.")
def exec_command(task, model, temperature, max_tokens, thinking, model_timeout, system, paths, no_ignore, context,
                 thread, expression, reset, statement_timeout, max_steps, max_errors, memory_mb,
                 max_output, confirm, quiet, answer_format, no_log):
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
    from llmtools import ask
    from llmtools.errors import UsageError
    from llmtools.notices import warn

    if expression is not None and (task or paths or context):
        raise UsageError("--eval takes an expression and no task")
    if reset and not thread:
        raise UsageError("--reset needs --thread ID")
    timeout = _setting(statement_timeout, "timeout", DEFAULT_TIMEOUT, float)
    thread_id = thread or f"exec-{secrets.token_hex(6)}"
    stdin_messages = [] if expression is not None else read_stdin_messages()
    asked = bool(task or paths or context or stdin_messages)
    with _runtimes_for(thread, thread_id) as runtimes:
        if reset:
            runtimes.reset(thread_id)
        if expression is not None:
            _evaluate(runtimes, thread_id, expression, timeout)
        elif asked or not reset:  # nothing asked and no --reset: prepare() says so
            prepared = ask.prepare(
                ask.PromptParts(prompt=" ".join(task) or None, system=system, paths=list(paths),
                                context=list(context), stdin_messages=stdin_messages,
                                use_ignore_files=not no_ignore),
                model=model, timeout=model_timeout, thinking=thinking)
            for warning in prepared.warnings:
                warn(warning)
            settings = _loop_settings(thread_id, timeout, max_steps=max_steps, max_errors=max_errors,
                                      memory_mb=memory_mb, max_output=max_output, log=not no_log,
                                      temperature=temperature, max_tokens=max_tokens,
                                      thinking=prepared.request.thinking)
            _run_task(runtimes, prepared, settings, thread=thread, confirm=confirm, quiet=quiet,
                      answer_format=answer_format)


@contextlib.contextmanager
def _runtimes_for(thread: str | None, thread_id: str):
    """The runtimes to use; a throwaway thread's runtime (no --thread) goes at the end."""
    runtimes, owned = connect_runtimes(thread)
    signalled = False
    try:
        yield runtimes
    except (KeyboardInterrupt, Terminated):
        signalled = True
        raise
    finally:
        if not thread:
            # Its worker and snapshot go. After a signal, without waiting for the daemon to
            # confirm: the exit status (130, 143) must not depend on a daemon answering.
            discard = getattr(runtimes, "discard", None) if signalled else None
            with contextlib.suppress(Exception):
                (discard or runtimes.reset)(thread_id)
        if owned:
            runtimes.close()


def _loop_settings(thread_id: str, statement_timeout: float, *, max_steps, max_errors, memory_mb,
                   max_output, **model_call):
    """The loop's limits: each flag, else its [exec] key in config.toml, else the default."""
    from llmtools import codeact

    return codeact.Settings(
        thread_id=thread_id,
        max_steps=int(_setting(max_steps, "max_steps", DEFAULT_MAX_STEPS, int)),
        max_errors=int(_setting(max_errors, "max_errors", DEFAULT_MAX_ERRORS, int)),
        statement_timeout=statement_timeout,
        memory_mb=_setting(memory_mb, "memory_mb", None, int),
        max_output_chars=int(_setting(max_output, "max_output", DEFAULT_MAX_OUTPUT, int)),
        **model_call)


def _run_task(runtimes, prepared, settings, *, thread: str | None, confirm: bool, quiet: bool,
              answer_format: AnswerFormat) -> None:
    """The loop, shown as it runs: prose to stdout, code and results to stderr."""
    from llmtools import codeact
    from llmtools.errors import LlmtoolsError

    display = WorkDisplay(quiet)
    confirm_function, tty = tty_confirm(show_code=quiet or not sys.stderr.isatty()) if confirm else (None, None)
    try:
        helpers_doc = _helpers_doc(runtimes, settings, display, thread)
        messages = prepared.request.messages
        loop = codeact.CodeActLoop(prepared.spec, messages, runtimes, settings, helpers_doc=helpers_doc,
                                   confirm=confirm_function, conversation_id=prepared.conversation_id)
        answer = AnswerWriter(answer_format, show_thinking=not quiet)
        try:
            _show_events(loop.run(), answer, display)
        finally:
            answer.close([*messages, *loop.transcript])
    finally:
        if tty is not None:
            tty.close()
    if loop.stop_reason in STOP_MESSAGES:
        raise LlmtoolsError(STOP_MESSAGES[loop.stop_reason].format(
            max_steps=settings.max_steps, max_errors=settings.max_errors))


def _helpers_doc(runtimes, settings, display: WorkDisplay, thread: str | None) -> str:
    """What the model is told about the helpers; starting the runtime on the way."""
    from llmtools import codeact
    from llmtools.errors import ServiceUnavailable
    from llmtools.notices import warn

    helpers_doc, helper_errors, first = codeact.fetch_helpers_doc(runtimes, settings.thread_id,
                                                                   settings.statement_timeout)
    if (first.get("error") or {}).get("type") == "RuntimeUnavailable":
        raise ServiceUnavailable(first["error"]["message"])  # nothing could run the code
    for problem in helper_errors:
        warn(problem)
    restored = first.get("restored") or {}
    if restored.get("names") and thread:
        display.note(f"thread {thread}: restored {', '.join(restored['names'])} from its snapshot")
    return helpers_doc


def _show_events(events, answer: AnswerWriter, display: WorkDisplay) -> None:
    from llmtools import codeact

    for event in events:
        if isinstance(event, codeact.Thinking):
            answer.thinking(event.text)
            continue
        answer.end_thinking()
        if isinstance(event, codeact.Prose):
            answer.text(event.text)
        elif isinstance(event, codeact.CodeText):
            answer.end_line()  # the prose line ends where the code begins
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


command = exec_command  # the name every cli module gives its click command


def main() -> None:
    from llmtools.inputs import group_exclusions

    run(exec_command, group_exclusions(sys.argv[1:]), prog_name="llm-exec")


if __name__ == "__main__":
    main()
