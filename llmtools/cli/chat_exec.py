"""`/exec` and `/eval` in `llm chat`: llm-exec's loop and runtime, on the chat's own thread.

The runtime thread is `chat-<conversation id>`, so what /exec defines stays for the next
/exec and for /eval, and `llm-exec --thread chat-<id> --eval EXPR` reaches it from a shell
(with the daemon running; without it, only what can be pickled carries over).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from llmtools.cli import exec as exec_cli


def _thread_id(session) -> str:
    from llmtools.chat.commands import runtime_thread

    return runtime_thread(session)


def _confined_runtimes(thread_id: str) -> contextlib.AbstractContextManager:
    """The chat's runtimes under the same sandbox as `llm-exec` (its config and defaults):
    a chat is no reason for model code to run with more reach. A named thread: kept."""
    rules = exec_cli._sandbox_rules(None, (), False, {"memory_mb": None, "cpu_s": None, "processes": None})
    return exec_cli._runtimes_for(thread_id, thread_id, rules)


def run_exec_turn(session, task: str, answer, notice: Callable[[str], None]) -> None:
    """One turn through llm-exec's CodeAct loop; its transcript joins the chat's thread."""
    from llmtools import codeact

    thread_id = _thread_id(session)
    with _confined_runtimes(thread_id) as runtimes:
        timeout = exec_cli._setting(None, "timeout", exec_cli.DEFAULT_TIMEOUT, float)
        options = session.options
        settings = exec_cli._loop_settings(
            thread_id, timeout, max_steps=None, max_errors=None, memory_mb=None, max_output=None,
            log=session.log, temperature=options.temperature, max_tokens=options.max_tokens,
            thinking=options.thinking)
        display = exec_cli.WorkDisplay(quiet=False)
        helpers_doc = exec_cli._helpers_doc(runtimes, settings, display, thread_id)
        messages = session.messages_for_turn(task)
        loop = codeact.CodeActLoop(session.spec, messages, runtimes, settings, helpers_doc=helpers_doc,
                                   conversation_id=session.conversation_id)
        try:
            exec_cli._show_events(loop.run(), answer, display)
        except KeyboardInterrupt:
            notice("cancelled; what arrived stays in the thread")
        finally:
            answer.close(None)
            session.replace_thread([*messages, *loop.transcript])
        if loop.stop_reason in exec_cli.STOP_MESSAGES:
            notice(exec_cli.STOP_MESSAGES[loop.stop_reason].format(
                max_steps=settings.max_steps, max_errors=settings.max_errors))


def evaluate(session, expression: str) -> None:
    """Evaluate in the chat's runtime and print the value, as `llm-exec --eval` does."""
    with _confined_runtimes(_thread_id(session)) as runtimes:
        timeout = exec_cli._setting(None, "timeout", exec_cli.DEFAULT_TIMEOUT, float)
        exec_cli._evaluate(runtimes, _thread_id(session), expression, timeout)
