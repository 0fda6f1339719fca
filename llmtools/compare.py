"""Are two messages the same in substance? The core of llm-compare.

    verdict = compare(first, second, ask=ask, criteria="same totals")
    verdict.line()  ->  "true # both say the invoice total is $1,200"

The model is asked for {"same": bool, "reason": str} (structured output where the
provider has it, `llmtools.schemas.verdict_schema`); a reply that is instead a line
starting with true or false (LLMVM's compare.prompt form) is read too. Anything else
is no verdict: `NoVerdict`, exit status 76.

llm-compare is a predicate, so 1 means "false" and nothing else: `verdict_errors()`
moves every error that other commands report as 1 (a refused request, a script's
error, a bug) to 76, so `if llm-compare ...; then` never takes a failure for a "no".
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
from collections.abc import Callable, Iterator

from llmtools import schemas, stack
from llmtools.errors import ExitStatus, LlmtoolsError, UsageError

COMPARE_SYSTEM = """\
You compare two pieces of content, <first> and <second>, and decide whether they are the \
same in substance: the same facts, claims, meaning or picture, however differently worded, \
formatted or ordered. Differences of style, length or wording alone do not make them \
different; a fact in one that contradicts or is missing from the other does.
Reply with one JSON object and nothing else: {"same": true or false, "reason": "<one short sentence>"}"""

_VERDICT_LINE = re.compile(r"^[\W_]*(true|false)\b[\s:,.;*-]*(?:#\s*)?(.*)$", re.IGNORECASE)


class NoVerdict(LlmtoolsError):
    """The model answered, but neither true nor false."""

    status = ExitStatus.NO_VERDICT


@dataclasses.dataclass
class Verdict:
    same: bool
    reason: str

    def line(self) -> str:
        reason = " ".join(self.reason.split())
        return f"{'true' if self.same else 'false'} # {reason}" if reason else str(self.same).lower()

    @property
    def status(self) -> ExitStatus:
        return ExitStatus.OK if self.same else ExitStatus.FAILURE


def argument_message(value: str) -> dict:
    """An argument of llm-compare: the file it names (text, image or PDF), else the text itself."""
    if os.path.isfile(value):
        from llmtools.inputs import file_message

        found = file_message(value, explicit=True)
        if found is not None:
            return found
    return stack.message("user", value)


def pick_pair(messages: list[dict], arguments: list[str]) -> tuple[dict, dict]:
    """The two to compare: the arguments, with the stack's last messages making up the rest."""
    if len(arguments) > 2:
        raise UsageError(f"llm-compare compares two things; {len(arguments)} were given")
    given = [argument_message(value) for value in arguments]
    content = [message for message in messages if message["role"] != "system"]
    wanted = 2 - len(given)
    if len(content) < wanted:
        have = len(content) + len(given)
        raise UsageError(f"two things to compare are needed and {have} {'was' if have == 1 else 'were'} "
                         f"given: pipe in a stack of two messages, or give two files or strings")
    first, second = [*content[len(content) - wanted:], *given] if wanted else given
    return first, second


def _labelled(tag: str, message: dict) -> dict:
    content = message["content"]
    source = (message.get("meta") or {}).get("source")
    opening = f"<{tag}" + (f' source="{source}"' if source else "") + ">"
    if isinstance(content, str):
        return stack.message("user", f"{opening}\n{content}\n</{tag}>")
    return stack.message("user", [{"type": "text", "text": opening}, *content,
                                  {"type": "text", "text": f"</{tag}>"}])


def compare(first: dict, second: dict, *, ask: Callable[[list[dict], dict], str],
            criteria: str | None = None) -> Verdict:
    instruction = "Are <first> and <second> the same in substance?"
    if criteria:
        instruction += f" What counts as the same here: {criteria}"
    messages = [stack.message("system", COMPARE_SYSTEM), _labelled("first", first),
                _labelled("second", second), stack.message("user", instruction)]
    return parse_verdict(ask(messages, schemas.verdict_schema()))


def parse_verdict(reply: str) -> Verdict:
    from llmtools.bind import parse_json_reply

    try:
        answer = parse_json_reply(reply, dict)
    except ValueError:
        answer = None
    if answer is not None and not schemas.validate(answer, schemas.verdict_schema()):
        return Verdict(answer["same"], answer["reason"])
    if answer is not None and isinstance(answer.get("same"), str) and answer["same"].lower() in ("true", "false"):
        return Verdict(answer["same"].lower() == "true", str(answer.get("reason") or ""))
    for line in reply.strip().splitlines()[:3]:
        matched = _VERDICT_LINE.match(line.strip())
        if matched:
            return Verdict(matched.group(1).lower() == "true", matched.group(2).strip())
    shown = json.dumps(reply[:120], ensure_ascii=False)
    raise NoVerdict(f"the model's answer is neither true nor false: {shown}")


@contextlib.contextmanager
def verdict_errors() -> Iterator[None]:
    """Errors (and bugs) that would exit 1, which for a predicate means "false", exit 76."""
    try:
        yield
    except LlmtoolsError as error:
        if error.status == ExitStatus.FAILURE:
            error.status = ExitStatus.NO_VERDICT
        raise
    except Exception as error:  # noqa: BLE001  (a bug: still no verdict, never "false")
        raise LlmtoolsError(f"internal error: {type(error).__name__}: {error} "
                            f"(run again with --debug for the traceback)",
                            status=ExitStatus.NO_VERDICT) from error
