"""The core of `llm-exec`: the model writes prose and code, a persistent runtime runs it.

One step: ask the model (stopping at `</helpers>`); if its reply holds a

    <helpers>
    code
    </helpers>

block, run the code statement by statement in the thread's runtime and send the output
back as a user message

    <helpers_result>
    what it printed, expression values, result() values, the error if any
    </helpers_result>

then ask again. The loop ends when a reply has no block (that reply is the answer), or
at a bound: `max_steps` blocks run, or `max_errors` failed blocks in a row. At a bound
the model is told to answer without code; a block written after that is not run.

Nothing here prints or knows about click: `CodeActLoop.run()` yields events and the
CLI renders them (prose to stdout, code and results to stderr). `transcript` holds the
messages the loop added (assistant turns and result turns), for `-S`.

    loop.py      CodeActLoop, its events and Settings
    splitter.py  the model's stream split into prose and the code of a <helpers> block
    feedback.py  the system prompt, the notes at the bounds, <helpers_result> texts

The names other code uses are importable from `llmtools.codeact` itself.
"""

from llmtools.codeact.feedback import (
    CUT_OFF_NOTE,
    DECLINED_NOTE,
    ERROR_LIMIT_NOTE,
    LAST_STEP_NOTE,
    format_result,
    truncate_middle,
)
from llmtools.codeact.loop import (
    QUIT,
    RUN,
    SKIP,
    BlockFinished,
    BlockReady,
    BlockSkipped,
    BlockStarted,
    CodeActLoop,
    CodeText,
    Confirm,
    Event,
    Prose,
    Runtimes,
    Settings,
    Thinking,
    fetch_helpers_doc,
)
from llmtools.codeact.splitter import HelpersSplitter, clean_code

__all__ = [
    "CUT_OFF_NOTE", "DECLINED_NOTE", "ERROR_LIMIT_NOTE", "LAST_STEP_NOTE", "QUIT", "RUN", "SKIP",
    "BlockFinished", "BlockReady", "BlockSkipped", "BlockStarted", "CodeActLoop", "CodeText",
    "Confirm", "Event", "HelpersSplitter", "Prose", "Runtimes", "Settings", "Thinking",
    "clean_code", "fetch_helpers_doc", "format_result", "truncate_middle",
]
