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
import os
import sys
from typing import TYPE_CHECKING

import click

from llmtools.cli.exec_display import WorkDisplay, tty_confirm
from llmtools.cli.main import run
from llmtools.cli.options import (
    SECONDS,
    answer_output_options,
    complete_thread_ids,
    log_option,
    model_options,
    prompt_options,
)
from llmtools.cli.options import command as llmtools_command
from llmtools.cli.output import AnswerFormat, AnswerWriter, echo, read_stdin_messages, write_raw
from llmtools.errors import Terminated
from llmtools.terminal import write_stderr

if TYPE_CHECKING:
    from llmtools.runtime.results import ExecuteResult

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


# --- the command --------------------------------------------------------------------------


def _evaluate(runtimes, thread_id: str, expression: str, timeout: float) -> None:
    from llmtools.errors import LlmtoolsError

    # keep_policy: a look at the thread from another directory or without the -p files of
    # its last run must not replace its worker (and lose what could not be pickled).
    answer = runtimes.evaluate(thread_id, expression, timeout=timeout, keep_policy=True)
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
@click.option("--thread", metavar="ID", shell_complete=complete_thread_ids,
              help="Thread to use: its runtime's variables, functions and imports and its "
                   "conversation persist across calls. Default: a fresh one, discarded at the end.")
@click.option("--new", "new_conversation", is_flag=True,
              help="Start the thread's conversation over (its variables stay).")
@click.option("-c", "--continue", "continue_last", is_flag=True, help="Continue the last conversation.")
@click.option("--cid", metavar="ID", help="Continue the conversation with this id (or id prefix).")
@click.option("--threads", "list_threads", is_flag=True,
              help="List the threads: variables, last use and size; then exit.")
@click.option("--eval", "expression", metavar="EXPR",
              help="Evaluate EXPR in the thread's runtime and print its value; no model call.")
@click.option("--reset", is_flag=True, help="Forget the thread's runtime first (alone: just that).")
@click.option("--statement-timeout", type=SECONDS, metavar="SECONDS",
              help=f"Longest a statement may run [default {DEFAULT_TIMEOUT:g}].")
@click.option("--max-steps", type=click.IntRange(1), metavar="N",
              help=f"Most code blocks to run [default {DEFAULT_MAX_STEPS}].")
@click.option("--max-errors", type=click.IntRange(1), metavar="N",
              help=f"Failed blocks in a row before the model must answer [default {DEFAULT_MAX_ERRORS}].")
@click.option("--sandbox", "sandbox_mode", type=click.Choice(["workspace", "read-only", "off"]),
              help="What the model's code may touch: workspace (default where bubblewrap works: "
                   "this directory writable, no network, home hidden), read-only, or off.")
@click.option("--allow-path", "allow_paths", multiple=True, metavar="PATH[:rw]",
              help="Also show PATH to the code (read-only; writable with :rw). Repeatable.")
@click.option("--allow-net", is_flag=True, help="Let the code itself use the network.")
@click.option("--memory-mb", type=click.IntRange(64), metavar="MB",
              help="Address-space limit of the runtime process [default: half the RAM].")
@click.option("--cpu-seconds", type=click.IntRange(1), metavar="S", help="CPU seconds per block [default 600].")
@click.option("--max-processes", type=click.IntRange(1), metavar="N",
              help="Processes the code may run at once [default 256].")
@click.option("--max-output", type=click.IntRange(200), metavar="CHARS",
              help=f"Most output characters per block shown to the model [default {DEFAULT_MAX_OUTPUT}].")
@click.option("--confirm", is_flag=True, help="Show each block and ask on the terminal before running it.")
@click.option("-q", "--quiet", is_flag=True, help="Do not show code and results on stderr.")
@answer_output_options(stack_help="Write the whole exchange as a message stack (JSON lines) instead of the prose.")
@log_option("Do not log the model calls.")
@click.option("--profile", is_flag=True,
              help="Print each model call's time, tokens (cache reads and writes too) and cost, "
                   "and their total, on stderr.")
def exec_command(task, model, temperature, max_tokens, thinking, model_timeout, system, paths, no_ignore,
                 context,
                 thread, new_conversation, continue_last, cid, list_threads, expression, reset,
                 statement_timeout, max_steps, max_errors, sandbox_mode, allow_paths, allow_net, memory_mb,
                 cpu_seconds, max_processes, max_output, confirm, quiet, answer_format, no_log, profile):
    """Do TASK by letting the model write and run Python, step by step.

    \b
      llm-exec "How many lines of Python are under src/?"
      llm-exec --thread t1 "Define fib(n) and compute fib(30)"
      llm-exec --thread t1 --eval "fib(31)"
      curl -s https://example.com | llm-exec "List the links in this page"

    The model writes code in <helpers> blocks; each runs statement by statement in a
    persistent Python runtime (one per --thread, kept by the daemon) and the output goes
    back to the model, until it answers. See llm-exec(1) for the helpers it can call.

    \b
    What the code can touch (--sandbox, [exec] sandbox in config.toml):
      workspace  the system read-only; this directory and the thread's work directory
                 writable; /tmp private; the rest of your home, your keys and the
                 network unreachable; nothing it starts outlives the runtime
      read-only  as workspace, but only the thread's work directory is writable
      off        everything you can touch (a warning each run)
    Files and directories given with -p are readable in every mode.
    Helpers (llm_call, download, ...) reach models and the network for it in every
    mode. Memory, CPU, processes, open files and file size are limited in every mode.
    """
    from llmtools import ask
    from llmtools.codeact import threads

    if list_threads:
        return _list_threads()
    _check_combinations(expression is not None and bool(task or paths or context), reset, new_conversation, thread)
    timeout = _setting(statement_timeout, "timeout", DEFAULT_TIMEOUT, float)
    thread_id = thread or f"exec-{os.urandom(6).hex()}"  # what secrets.token_hex does, without hmac
    stdin_messages = [] if expression is not None else read_stdin_messages()
    asked = bool(task or paths or context or stdin_messages)
    rules = _sandbox_rules(sandbox_mode, (*allow_paths, *_named_inputs(paths)), allow_net,
                           {"memory_mb": memory_mb, "cpu_s": cpu_seconds, "processes": max_processes})
    with _runtimes_for(thread, thread_id, rules) as runtimes:
        if reset:
            runtimes.reset(thread_id)
        if expression is not None:
            if not reset:  # --reset --eval: a fresh runtime, on purpose
                threads.check_exists(runtimes, thread)
            _evaluate(runtimes, thread_id, expression, timeout)
        elif asked or not reset:  # nothing asked and no --reset: prepare() says so
            parts = ask.PromptParts(prompt=" ".join(task) or None, system=system, paths=list(paths),
                                    context=list(context), stdin_messages=stdin_messages,
                                    use_ignore_files=not no_ignore)
            prepared = _prepare_task(parts, model=model, timeout=model_timeout, thinking=thinking, thread=thread,
                                     new_conversation=new_conversation, continue_last=continue_last, cid=cid)
            documents = _documents(prepared, stdin_messages, parts.history)
            settings = _loop_settings(
                thread_id, timeout, max_steps=max_steps, max_errors=max_errors, memory_mb=memory_mb,
                max_output=max_output, log=not no_log, temperature=temperature, max_tokens=max_tokens,
                thinking=prepared.request.thinking)
            _run_task(runtimes, prepared, settings, thread=thread, confirm=confirm, quiet=quiet,
                      answer_format=answer_format, profile=profile, documents=documents)


def _named_inputs(paths) -> tuple[str, ...]:
    """The local files and directories -p names: the user chose to show them, so the code
    may read them too (read-only), e.g. to load `documents[0].source` with pandas."""
    return tuple(path for path in paths if not path.startswith("!") and ":" not in path
                 and os.path.exists(os.path.expanduser(path)))


def _check_combinations(eval_with_task: bool, reset: bool, new_conversation: bool, thread: str | None) -> None:
    from llmtools.errors import UsageError

    if eval_with_task:
        raise UsageError("--eval takes an expression and no task")
    if reset and not thread:
        raise UsageError("--reset needs --thread ID")
    if new_conversation and not thread:
        raise UsageError("--new needs --thread ID")


def _prepare_task(parts, *, model, timeout, thinking, thread: str | None, new_conversation: bool,
                  continue_last: bool, cid: str | None):
    """The first request: the task, after the conversation it continues (the thread's own,
    unless --new; or -c / --cid)."""
    from llmtools import ask
    from llmtools.codeact import threads
    from llmtools.notices import warn

    continued = threads.conversation_to_continue(thread, new=new_conversation, chosen=continue_last or bool(cid))
    prepared = ask.prepare(parts, model=model, timeout=timeout, thinking=thinking,
                           continue_last=continue_last, conversation=cid or continued)
    if thread and prepared.conversation_id is None:
        prepared.conversation_id = threads.new_conversation_id(thread)
    for warning in prepared.warnings:
        warn(warning)
    return prepared


def _sandbox_rules(mode, allow_paths, allow_net, limit_flags) -> dict:
    """The sandbox policy for this run; warns when the code will run unconfined."""
    from llmtools.errors import ServiceUnavailable
    from llmtools.notices import warn
    from llmtools.runtime import sandbox

    try:
        rules, warning = sandbox.policy_from_settings(mode, allow_paths, allow_net, limit_flags)
    except sandbox.SandboxUnavailable as error:
        raise ServiceUnavailable(str(error)) from None
    if warning:
        warn(warning)
    return rules


def _documents(prepared, stdin_messages: list[dict], history: list[dict]) -> list[dict]:
    """stdin and -p inputs made `documents` for the runtime; long ones previewed in the prompt.

    Inputs are messages of this call with a `meta.source` (files, URLs, fetched pages) and
    what stdin held when it was not a stack (text, a PDF): a stack piped in is a conversation.
    The continued conversation's messages (`history`) are not inputs: the log holds their
    previews, which must not replace the documents the runtime already has."""
    from llmtools.codeact.documents import split_inputs

    plain_stdin = len(stdin_messages) == 1 and stdin_messages[0]["role"] == "user"
    from_stdin = {id(message) for message in stdin_messages} if plain_stdin else set()
    earlier = {id(message) for message in history}
    inputs = split_inputs(prepared.request.messages, lambda message: id(message) in from_stdin or (
        id(message) not in earlier and bool((message.get("meta") or {}).get("source"))))
    prepared.request.messages = inputs.messages
    return inputs.documents


@contextlib.contextmanager
def _runtimes_for(thread: str | None, thread_id: str, rules: dict):
    """The runtimes to use; a throwaway thread's runtime (no --thread) goes at the end."""
    from llmtools.runtime.sandbox import ConfinedRuntimes

    runtimes, owned = connect_runtimes(thread)
    signalled = False
    try:
        yield ConfinedRuntimes(runtimes, rules)
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
              answer_format: AnswerFormat, documents: list[dict], profile: bool = False) -> None:
    """The loop, shown as it runs: prose to stdout, code and results to stderr."""
    from llmtools import codeact
    from llmtools.errors import LlmtoolsError

    display = WorkDisplay(quiet)
    confirm_function, tty = tty_confirm(show_code=quiet or not sys.stderr.isatty()) if confirm else (None, None)
    try:
        helpers_doc = _helpers_doc(runtimes, settings, display, thread)
        messages = prepared.request.messages
        loop = codeact.CodeActLoop(prepared.spec, messages, runtimes, settings, helpers_doc=helpers_doc,
                                   confirm=confirm_function, conversation_id=prepared.conversation_id,
                                   documents=documents)
        answer = AnswerWriter(answer_format, show_thinking=not quiet)
        try:
            _show_events(loop.run(), answer, display)
        finally:
            answer.close([*messages, *loop.transcript])
            if profile:
                _show_profile(loop.exchanges)
    finally:
        if tty is not None:
            tty.close()
    if loop.stop_reason in STOP_MESSAGES:
        raise LlmtoolsError(STOP_MESSAGES[loop.stop_reason].format(
            max_steps=settings.max_steps, max_errors=settings.max_errors))


def _show_profile(exchanges) -> None:
    from llmtools.profile import run_profile

    write_stderr(run_profile(exchanges))


def _list_threads() -> None:
    from llmtools.codeact import threads

    runtimes, owned = connect_runtimes(None)
    try:
        rows = threads.list_threads(runtimes)
    finally:
        if owned:
            runtimes.close()
    echo(threads.format_threads(rows) if rows else "no threads yet")


def _helpers_doc(runtimes, settings, display: WorkDisplay, thread: str | None) -> str:
    """What the model is told about the helpers; starting the runtime on the way."""
    from llmtools import codeact
    from llmtools.errors import ServiceUnavailable
    from llmtools.notices import warn

    helpers_doc, helper_errors, first = codeact.fetch_helpers_doc(runtimes, settings.thread_id,
                                                                   settings.statement_timeout)
    error = first.get("error")
    if error and error["type"] == "RuntimeUnavailable":
        raise ServiceUnavailable(error["message"])  # nothing could run the code
    for problem in helper_errors:
        warn(problem)
    restored = first.get("restored")
    if restored and restored.get("names") and thread:
        display.note(f"thread {thread}: restored {', '.join(restored['names'])} from its snapshot")
    return helpers_doc


def _tell_limit(result: ExecuteResult) -> None:
    """A resource limit that stopped a block is the user's to know (and to raise), even with -q."""
    error = result.get("error")
    if error and error.get("limit"):
        from llmtools.notices import warn

        warn(f"block stopped by a limit: {error['message'].split(': ', 1)[-1]}")


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
            _tell_limit(event.result)
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
