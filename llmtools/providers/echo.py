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


class EchoProvider(Provider):
    name = "echo"

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
        first_turn = len(lines)
        lines.extend(json.dumps(turn, ensure_ascii=False) for turn in turns)
        # Sizes from the lines already made: a 100 MB prompt is not copied again to count it.
        sent = sum(len(line) for line in lines[first_turn:]) + max(len(turns) - 1, 0)
        answer = sum(len(line) for line in lines) + max(len(lines) - 1, 0)
        for index in range(len(lines)):
            line, lines[index] = lines[index], ""
            if len(line) < 1 << 20:
                yield TextDelta(line + "\n")  # whole lines: a terminal renders each at once
            else:  # no 100 MB copy just to add a newline
                yield TextDelta(line)
                yield TextDelta("\n")
        yield Usage(input_tokens=(sent + 3) // 4, output_tokens=(answer + 3) // 4)
        yield Finished("end_turn")
