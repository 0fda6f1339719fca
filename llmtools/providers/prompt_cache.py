"""Prompt caching: where Anthropic `cache_control` breakpoints go, and what is cacheable.

A request's prefix is tools, then system, then messages. Anthropic caches a prefix up to
a block marked `cache_control`, and on a later request reads the longest marked-before
prefix it finds (looking back at most 20 blocks from each breakpoint); a request may
carry at most 4 breakpoints. Three are placed, leaving one for whoever adds tools:

1. the end of the system text: the instructions (and llm-exec's helper docs), stable
   across every step and every task;
2. the end of the last message: the transcript so far, written now for the next call
   (the next `llm -c` turn, the next `llm-exec` step) to read;
3. the end of the last user message before the last assistant turn: where the previous
   call put breakpoint 2, so it reads back the whole earlier transcript even when more
   than 20 blocks were added since.

The API ignores a breakpoint whose prefix is below the model's minimum (1024 tokens for
most models), so short prompts cost nothing extra. OpenAI caches on its own (prefixes of
1024 tokens and more) and reports the hits as `prompt_tokens_details.cached_tokens`;
local models keep their KV cache (`llama_engine`).
"""

from __future__ import annotations

from typing import Any

MAX_BREAKPOINTS = 4
EPHEMERAL = {"type": "ephemeral"}


def mark_cache_breakpoints(params: dict[str, Any]) -> None:
    """Add breakpoints to `messages.create` keyword arguments, in place, within the limit."""
    budget = MAX_BREAKPOINTS - _breakpoints_already(params)
    targets: list[list[dict]] = []
    system = params.get("system")
    if isinstance(system, str) and system:
        params["system"] = [{"type": "text", "text": system}]
    if isinstance(params.get("system"), list) and params["system"]:
        targets.append(params["system"])
    messages = params.get("messages") or []
    for message in messages:
        if isinstance(message.get("content"), str) and message["content"]:
            message["content"] = [{"type": "text", "text": message["content"]}]
    earlier = _last_user_before_last_assistant(messages)
    if earlier is not None:
        targets.append(earlier["content"])
    if messages and isinstance(messages[-1].get("content"), list):
        targets.append(messages[-1]["content"])
    # The system and the newest message matter most: drop the middle one first.
    while len(targets) > max(budget, 0):
        targets.pop(1 if len(targets) > 2 else 0)
    for blocks in targets:
        if blocks:
            blocks[-1]["cache_control"] = dict(EPHEMERAL)


def _last_user_before_last_assistant(messages: list[dict]) -> dict | None:
    last_assistant = next((index for index in range(len(messages) - 1, -1, -1)
                           if messages[index].get("role") == "assistant"), None)
    if last_assistant is None:
        return None
    for index in range(last_assistant - 1, -1, -1):
        message = messages[index]
        if message.get("role") == "user" and isinstance(message.get("content"), list):
            return message if message["content"] else None
    return None


def _breakpoints_already(params: dict[str, Any]) -> int:
    """Breakpoints someone else placed (on tools, say), which count against the limit."""
    count = 0
    for key in ("tools", "system"):
        value = params.get(key)
        if isinstance(value, list):
            count += sum(1 for item in value if isinstance(item, dict) and "cache_control" in item)
    for message in params.get("messages") or []:
        content = message.get("content")
        if isinstance(content, list):
            count += sum(1 for block in content if isinstance(block, dict) and "cache_control" in block)
    return count
