"""The core of `llm`: assemble the stack to send, pick the conversation, check the request.

Stack order: the continued thread (-c/--cid), then stdin (a stack, text, an image or a
PDF), then -p paths, then -t context, then the prompt; -s replaces a leading system
message or adds one. Nothing here prints to stdout or knows about click.
"""

from __future__ import annotations

import dataclasses

from llmtools import stack
from llmtools.errors import InputError, UsageError
from llmtools.providers.base import ModelSpec, Request

THINKING_EFFORTS = ("low", "medium", "high")


@dataclasses.dataclass
class PromptParts:
    prompt: str | None = None
    system: str | None = None
    paths: list[str] = dataclasses.field(default_factory=list)
    context: list[str] = dataclasses.field(default_factory=list)
    stdin_messages: list[dict] = dataclasses.field(default_factory=list)
    history: list[dict] = dataclasses.field(default_factory=list)
    use_ignore_files: bool = True  # -p directories and globs honour .gitignore and .ignore


def build_messages(parts: PromptParts) -> list[dict]:
    from llmtools.inputs import path_messages

    messages = [*parts.history, *parts.stdin_messages]
    if parts.paths:
        messages.extend(path_messages(parts.paths, use_ignore_files=parts.use_ignore_files))
    messages.extend(stack.message("user", text) for text in parts.context)
    if parts.prompt:
        messages.append(stack.message("user", parts.prompt))
    if parts.system is not None:
        system = stack.message("system", parts.system)
        # Replace rather than stack up: `llm -s X -S a | llm -s X b` must not say X twice.
        if messages and messages[0]["role"] == "system":
            messages[0] = system
        else:
            messages.insert(0, system)
    if not any(msg["role"] != "system" for msg in messages):
        raise UsageError("nothing to ask: give a prompt, pipe something in, or use -p")
    return messages


def choose_conversation(store, *, continue_last: bool, conversation: str | None,
                        stdin_messages: list[dict]) -> tuple[str | None, list[dict]]:
    """(conversation id or None for a new one, earlier messages to prepend).

    A stack piped in from an earlier `llm -S` carries its thread: if its last answer
    is in the log, this call joins that conversation, so `llm logs` shows the chain.
    """
    if conversation:
        found = store.find_conversation(conversation)
        return found, store.conversation_messages(found)
    if continue_last:
        last = store.last_conversation_id()
        if last is None:
            raise UsageError("-c: there is no earlier conversation to continue")
        return last, store.conversation_messages(last)
    for msg in reversed(stdin_messages):
        response_id = (msg.get("meta") or {}).get("id")
        if msg["role"] == "assistant" and isinstance(response_id, str):
            return store.conversation_of_response(response_id), []
    return None, []


def check_thinking(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip().lower()
    if value in THINKING_EFFORTS or (value.isdigit() and int(value) > 0):
        return value
    raise UsageError(f"-z/--thinking takes a token budget or low/medium/high (got {value!r})")


@dataclasses.dataclass
class Prepared:
    spec: ModelSpec
    request: Request
    conversation_id: str | None
    warnings: list[str]


def prepare(parts: PromptParts, *, model: str | None, timeout: float | None = None,
            temperature: float | None = None, max_tokens: int | None = None,
            thinking: str | None = None, continue_last: bool = False,
            conversation: str | None = None) -> Prepared:
    """What `llm` and `llm-exec` share: the model resolved, the thread picked up, the
    stack assembled and checked against what the model can take.

    `parts.history` is filled in here from -c/--cid or a piped stack's log id.
    """
    from llmtools.config import resolve_model

    spec = resolve_model(model)
    if timeout is not None:
        spec.timeout = timeout
    conversation_id = None
    if continue_last or conversation or parts.stdin_messages:
        conversation_id, parts.history = _conversation_from_log(
            continue_last=continue_last, conversation=conversation, stdin_messages=parts.stdin_messages)
    request = Request(messages=build_messages(parts), max_tokens=max_tokens,
                      temperature=temperature, thinking=check_thinking(thinking))
    return Prepared(spec, request, conversation_id, check_request(spec, request))


def _conversation_from_log(*, continue_last: bool, conversation: str | None,
                           stdin_messages: list[dict]) -> tuple[str | None, list[dict]]:
    """choose_conversation() on the log. A log that cannot be read fails -c/--cid (they need
    it); a piped stack merely starts a new conversation, with a warning."""
    import sqlite3

    from llmtools.logs import open_log

    try:
        store = open_log()
        try:
            return choose_conversation(store, continue_last=continue_last, conversation=conversation,
                                       stdin_messages=stdin_messages)
        finally:
            store.close()
    except (sqlite3.Error, OSError) as error:
        from llmtools import unlogged
        from llmtools.config import paths
        from llmtools.errors import ExitStatus, LlmtoolsError
        from llmtools.notices import warn

        if continue_last or conversation:
            raise LlmtoolsError(f"cannot read the log: {unlogged.describe(error, paths().log_db)}",
                                status=ExitStatus.NOT_LOGGED) from None
        message = unlogged.record(error, paths().log_db)
        if message:
            warn(message)
        return None, []


def check_request(spec: ModelSpec, request: Request) -> list[str]:
    """Refuse what the model cannot take; return warnings for what it will ignore."""
    from llmtools.providers import provider_class

    provider = provider_class(spec.provider)
    warnings = []
    if not provider.supports_images:
        for number, msg in enumerate(request.messages, start=1):
            content = msg["content"]
            if isinstance(content, list) and any(p.get("type") == "image" for p in content):
                raise InputError(f"model {spec.name} cannot read images (message {number} has one)")
    if request.thinking and not provider.supports_thinking:
        warnings.append(f"model {spec.name} has no thinking budget; -z ignored")
        request.thinking = None
    return warnings
