"""What `llm-map` does with its options: the one core entry for each of its three modes.

`run_answer` (the default), `select_chunks` (--select) and `run_each` (--each) take a
`MapJob` and return messages; the command only writes them. The progress bar (chunks
done / total, failures, cost so far) is drawn on stderr when it is a terminal.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable

from llmtools import stack
from llmtools.errors import UsageError
from llmtools.mapping.calls import DEFAULT_RETRIES, ModelCaller
from llmtools.mapping.chunking import DEFAULT_CHUNK_TOKENS
from llmtools.progress import CounterBar, Unit

CALLS = Unit(scale=1, name="calls", decimals=0, show_rate=False)


@dataclasses.dataclass
class MapJob:
    instruction: str
    messages: list[dict]  # the piped stack, which may end with its own question
    added: list[dict] = dataclasses.field(default_factory=list)  # -p and -t: always content
    system: str | None = None
    strategy: str = "auto"
    chunk_tokens: int = DEFAULT_CHUNK_TOKENS
    embedder: str | None = None
    model: str | None = None
    model_timeout: float | None = None
    jobs: int | None = None
    retries: int = DEFAULT_RETRIES
    keep_going: bool = False
    log: bool = True
    temperature: float | None = None
    max_tokens: int | None = None
    thinking: str | None = None

    def spec(self):
        from llmtools.config import resolve_model

        spec = resolve_model(self.model)
        if self.model_timeout is not None:
            spec.timeout = self.model_timeout
        return spec

    def concurrency(self) -> int | None:
        """Calls at once: -j, else LLMTOOLS_MAP_JOBS, else `[map] jobs`, else the caller's default."""
        from llmtools.config import setting

        return setting("jobs", None, flag=self.jobs, env="LLMTOOLS_MAP_JOBS", table="map", kind=int, positive=True)

    @property
    def all_messages(self) -> list[dict]:
        return self.messages + self.added

    def request(self):
        from llmtools.mapping.strategy import MapRequest, split_question

        system_texts = [stack.text_of(m) for m in self.all_messages if m["role"] == "system"]
        piped, question = split_question(self.messages)
        content = piped + [m for m in self.added if m["role"] != "system"]
        if not content:
            raise UsageError("no content to read: pipe a stack or text in, or use -p")
        system = self.system if self.system is not None else ("\n\n".join(system_texts) or None)
        return MapRequest(instruction=self.instruction, messages=content, question=question,
                          strategy=self.strategy, chunk_tokens=self.chunk_tokens, embedder=self.embedder,
                          system=system)


def warm_up_in_background(*, model: str | None, embedder: str | None, tokenizer: bool, ranker: bool,
                          model_route: bool) -> None:
    """Load what the job will need (the tokenizer, the ranker's tables, the model's route: the
    daemon or the SDK) in a background thread while the command still reads its input. In a
    pipeline (`llm-pdf book.pdf | llm-map ...`) the upstream command's time hides it; with
    the input already there it costs nothing extra, since the job would load the same things
    first. Errors are left for the job itself to meet and report."""
    import threading

    def warm() -> None:
        with contextlib.suppress(Exception):
            if tokenizer or ranker:
                from llmtools.mapping import tokens

                tokens.encoding()
            if ranker and _lexical(embedder):
                from llmtools.mapping.lexical import term_table

                term_table()
            if model_route:
                from llmtools import services
                from llmtools.config import resolve_model

                services.prepare_calls(resolve_model(model))

    threading.Thread(target=warm, name="llm-map-warm-up", daemon=True).start()


def _lexical(embedder: str | None) -> bool:
    from llmtools import services

    return any(part in ("bm25", "hashed") for part in services.embedder_name(embedder).split("+"))


class Bar:
    """The progress bar, as a ModelCaller's `on_progress`; ends at the first text of the answer."""

    def __init__(self) -> None:
        self.bar = CounterBar("llm-map", unit=CALLS)
        self.open = False

    def __call__(self, caller: ModelCaller) -> None:
        tally = caller.tally
        self.bar.label = (f"llm-map {caller.spec.name}: {tally.failed} failed, ${tally.cost_usd:.4f}"
                          if tally.failed or tally.cost_usd else f"llm-map {caller.spec.name}")
        if not self.open:
            self.bar.start(tally.total)
            self.open = True
        self.bar.total = tally.total
        self.bar.update(tally.done)

    def close(self) -> None:
        if self.open:
            self.bar.finish()
            self.open = False


def _caller(job: MapJob, bar: Bar | None) -> ModelCaller:
    return ModelCaller(job.spec(), jobs=job.concurrency(), retries=job.retries, keep_going=job.keep_going,
                       log=job.log, tool="llm-map", temperature=job.temperature, max_tokens=job.max_tokens,
                       thinking=job.thinking, on_progress=bar)


def select_chunks(job: MapJob) -> list[dict]:
    from llmtools.mapping.strategy import content_budget, select

    spec = job.spec()
    request = job.request()
    return [chunk.as_message() for chunk in select(request, content_budget(spec, job.max_tokens,
                                                                           job.instruction))]


def run_each(job: MapJob) -> list[dict]:
    from llmtools.mapping.strategy import each, items_of

    items = items_of(job.all_messages)
    if not items:
        raise UsageError("--each: no input messages or lines to go over")
    bar = Bar()
    try:
        with _caller(job, bar) as caller:
            results = each(caller, items, job.instruction)
    finally:
        bar.close()
    answers = []
    for number, result in enumerate(results, start=1):
        meta: dict = {"tool": "llm-map", "model": caller.spec.name, "input": number}
        if not result.ok:
            meta["status"] = "error"
            meta["error"] = str(result.error)
        answers.append({"role": "assistant", "content": result.text or "", "meta": meta})
    return answers


def run_answer(job: MapJob, stream_to: Callable[[str], None]) -> list[dict]:
    """The answer streamed to `stream_to`; returns the stack (content, instruction, answer)."""
    from llmtools.mapping.strategy import answer

    bar = Bar()
    request = job.request()

    def first_text(text: str) -> None:
        bar.close()
        stream_to(text)

    try:
        with _caller(job, bar) as caller:
            found = answer(caller, request, stream_to=first_text, max_tokens=job.max_tokens)
    finally:
        bar.close()
    meta = {"tool": "llm-map", "model": caller.spec.name, "strategy": found.strategy, "chunks": found.chunks,
            "used": found.used, "cost_usd": round(caller.tally.cost_usd, 8)}
    if found.failed:
        meta["failed"] = found.failed
    system = [stack.message("system", request.system)] if request.system else []
    return [*system, *request.messages, stack.message("user", job.instruction),
            {"role": "assistant", "content": found.text, "meta": meta}]
