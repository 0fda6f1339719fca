"""The `echo` model: answers with exactly what a real provider would have been sent.

Users debug pipelines with it (`... | llm -m echo` shows the merged, alternating turns
and the options); tests use it because it is deterministic and needs nothing.

The answer is JSON Lines: the options (if any were set), the system text (if any), one
line per turn after same-role merging and source wrapping (`prepare_turns`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from llmtools.providers.base import Event, Finished, Provider, Request, TextDelta, Usage, prepare_turns
from llmtools.providers.context import estimate_tokens


class EchoProvider(Provider):
    name = "echo"
    supports_images = True
    supports_thinking = True
    supports_schema = True  # shown among the options, as a real provider would be sent it

    def stream(self, request: Request) -> Iterator[Event]:
        system, turns = prepare_turns(request.messages)
        options = {key: value for key, value in (
            ("max_tokens", request.max_tokens),
            ("temperature", request.temperature),
            ("thinking", request.thinking),
            ("schema", request.schema),
        ) if value is not None}
        lines = [json.dumps({"options": options}, ensure_ascii=False)] if options else []
        if system is not None:
            lines.append(json.dumps({"system": system}, ensure_ascii=False))
        lines.extend(json.dumps(turn, ensure_ascii=False) for turn in turns)
        sent = "\n".join(json.dumps(turn, ensure_ascii=False) for turn in turns)
        for line in lines:
            yield TextDelta(line + "\n")
        yield Usage(input_tokens=estimate_tokens(sent), output_tokens=estimate_tokens("\n".join(lines)))
        yield Finished("end_turn")
