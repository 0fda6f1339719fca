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
    url_timeout: float | None = None  # for -p URLs: --url-timeout, else [fetch] timeout in config
    use_ignore_files: bool = True  # -p directories and globs honour .gitignore and .ignore


def build_messages(parts: PromptParts) -> list[dict]:
    from llmtools.inputs import path_messages

    messages = [*parts.history, *parts.stdin_messages]
    if parts.paths:
        messages.extend(path_messages(parts.paths, url_timeout=parts.url_timeout,
                                      use_ignore_files=parts.use_ignore_files))
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


@dataclasses.dataclass
class Thread:
    """A conversation being continued: its id, the messages it carries forward, and the
    model, options and command its newest exchange used."""

    conversation_id: str | None = None
    messages: list[dict] = dataclasses.field(default_factory=list)
    model: str | None = None
    options: dict = dataclasses.field(default_factory=dict)
    tool: str | None = None


def choose_conversation(store, *, continue_last: bool, conversation: str | None,
                        stdin_messages: list[dict], tool: str = "llm", retry: bool = False) -> Thread:
    """The thread this call continues (an empty Thread for a new conversation).

    Exchanges that failed before any answer arrived are not part of a thread. A thread
    made by another command carries its user and assistant messages but not that
    command's system prompt (llm-exec's tells the model to write code plain `llm` never
    runs). With `retry`, the messages are the newest exchange's request, sent again.

    A stack piped in from an earlier `llm -S` carries its thread: if its last answer
    is in the log, this call joins that conversation, so `llm logs` shows the chain.
    """
    if conversation or continue_last or retry:
        if conversation:
            found = store.find_conversation(conversation)
        else:
            found = store.last_conversation_id()
            if found is None:
                said = "-c: there is no earlier conversation to continue" if continue_last else \
                    "--retry: there is no earlier exchange to send again"
                raise UsageError(said)
        return _thread_of(store, found, tool=tool, retry=retry)
    for msg in reversed(stdin_messages):
        response_id = (msg.get("meta") or {}).get("id")
        if msg["role"] == "assistant" and isinstance(response_id, str):
            return Thread(store.conversation_of_response(response_id))
    return Thread()


def _thread_of(store, conversation_id: str, *, tool: str, retry: bool) -> Thread:
    import json

    newest = store.last_exchange(conversation_id)
    if retry:
        messages = json.loads(newest["messages"]) if newest else []
    else:
        messages = store.conversation_messages(conversation_id)
    thread = Thread(conversation_id, messages)
    if newest is not None:
        meta = json.loads(newest["meta"]) if newest["meta"] else {}
        thread.model, thread.tool = newest["model"], newest["tool"]
        thread.options = dict(meta.get("options") or {})
    if thread.tool and thread.tool != tool:
        thread.messages = [msg for msg in thread.messages if not _own_prompt_of(msg, thread.tool)]
    return thread


def _own_prompt_of(message: dict, maker: str) -> bool:
    """A system prompt the command that made the thread wrote for itself (llm-exec's tells the
    model to write code), which another command must not send. Such prompts carry their
    command in `meta.tool`; llm-exec's rows from before that tag carry only llm-exec's. A
    user's own `-s` or `/system` stays with the thread."""
    if message["role"] != "system":
        return False
    return (message.get("meta") or {}).get("tool") is not None or maker.startswith("llm-exec")


def thread_model(thread: Thread, model: str | None, warnings: list[str]) -> ModelSpec:
    """-m if given (saying so when it changes the conversation's model), else the thread's."""
    from llmtools.config import resolve_model

    if thread.model is None:
        return resolve_model(model)
    if model is None:
        try:
            return resolve_model(thread.model)
        except UsageError as error:
            raise UsageError(f"conversation {thread.conversation_id} was held with {thread.model}, "
                             f"which is unknown now; choose a model with -m ({error})") from None
    spec = resolve_model(model)
    if spec.name != thread.model:
        warnings.append(f"conversation {thread.conversation_id} was held with {thread.model}; "
                        f"continuing with {spec.name} (-m)")
    return spec


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
            conversation: str | None = None, tool: str = "llm", retry: bool = False) -> Prepared:
    """What `llm` and `llm-exec` share: the model resolved, the thread picked up, the
    stack assembled and checked against what the model can take.

    `parts.history` is filled in here from -c/--cid or a piped stack's log id. A continued
    conversation keeps its model and options unless -m (or the option's flag) says otherwise.
    """
    thread = Thread()
    if continue_last or conversation or retry or parts.stdin_messages:
        thread = _conversation_from_log(continue_last=continue_last, conversation=conversation,
                                        stdin_messages=parts.stdin_messages, tool=tool, retry=retry)
        parts.history = thread.messages
    if retry and (parts.prompt or parts.paths or parts.context or parts.stdin_messages):
        raise UsageError("--retry sends the last exchange again: give no prompt, stdin or -p with it")
    warnings: list[str] = []
    spec = thread_model(thread, model, warnings)
    if timeout is not None:
        spec.timeout = timeout
    options = thread.options
    request = Request(messages=build_messages(parts),
                      max_tokens=max_tokens if max_tokens is not None else options.get("max_tokens"),
                      temperature=temperature if temperature is not None else options.get("temperature"),
                      thinking=check_thinking(thinking if thinking is not None else options.get("thinking")))
    return Prepared(spec, request, thread.conversation_id, warnings + check_request(spec, request))


def _conversation_from_log(*, continue_last: bool, conversation: str | None,
                           stdin_messages: list[dict], tool: str, retry: bool) -> Thread:
    """choose_conversation() on the log. A log that cannot be read fails -c/--cid/--retry
    (they need it); a piped stack merely starts a new conversation, with a warning."""
    import sqlite3

    from llmtools.logs import open_log

    try:
        store = open_log()
        try:
            return choose_conversation(store, continue_last=continue_last, conversation=conversation,
                                       stdin_messages=stdin_messages, tool=tool, retry=retry)
        finally:
            store.close()
    except (sqlite3.Error, OSError) as error:
        from llmtools import unlogged
        from llmtools.errors import ExitStatus, LlmtoolsError
        from llmtools.notices import warn
        from llmtools.statedirs import paths

        if continue_last or conversation or retry:
            raise LlmtoolsError(f"cannot read the log: {unlogged.describe(error, paths().log_db)}",
                                status=ExitStatus.NOT_LOGGED) from None
        message = unlogged.record(error, paths().log_db)
        if message:
            warn(message)
        return Thread()


def check_request(spec: ModelSpec, request: Request) -> list[str]:
    """Refuse what the model cannot take; return warnings for what it will ignore."""
    from llmtools.providers import entry

    provider = entry(spec.provider)
    warnings = []
    if not provider.supports_images:
        for number, msg in enumerate(request.messages, start=1):
            content = msg["content"]
            if isinstance(content, list) and any(p.get("type") == "image" for p in content):
                source = (msg.get("meta") or {}).get("source")
                which = f"{source} is an image" if source else f"the image piped in (message {number})"
                raise InputError(f"model {spec.name} cannot read images: {which}; "
                                 f"choose a model that can with -m")
    if request.thinking and not provider.supports_thinking:
        warnings.append(f"model {spec.name} has no thinking budget; -z ignored")
        request.thinking = None
    return warnings
