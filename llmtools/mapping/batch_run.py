"""`llm-map --batch` and `--resume ID`: submit (or pick up) a batch, wait for it, combine."""

from __future__ import annotations

from collections.abc import Callable

from llmtools import stack
from llmtools.mapping import batch, prompts
from llmtools.mapping.calls import CallResult, MapFailed, ModelCaller
from llmtools.mapping.chunking import Chunk
from llmtools.mapping.run_command import CALLS, MapJob
from llmtools.progress import CounterBar


def _chunk_records(chunks: list[Chunk]) -> list[dict]:
    return [{"index": c.index, "message_index": c.message_index, "part": c.part, "text": c.text,
             "source": c.source} for c in chunks]


def _chunks(records: list[dict]) -> list[Chunk]:
    return [Chunk(r["index"], r["message_index"], r["part"], r["text"], None, r["source"]) for r in records]


def submit(job: MapJob) -> batch.BatchState:
    """Chunk the content, submit one map request per chunk, and keep the batch's state."""
    from llmtools.mapping.strategy import chunks_for, content_budget
    from llmtools.notices import note

    spec = job.spec()
    request = job.request()
    chunks = chunks_for(request, content_budget(spec, job.max_tokens, request.instruction))
    if not chunks:
        from llmtools.errors import UsageError

        raise UsageError("no content to read: pipe a stack or text in, or use -p")
    from llmtools import services

    batches = services.batches(spec)
    requests = [(batch.custom_id(chunk.index),
                 batches.params(prompts.map_messages(chunk, len(chunks), request.instruction), job.max_tokens,
                                job.temperature)) for chunk in chunks]
    import time

    state = batch.BatchState(id=batches.submit(requests), model=spec.name, instruction=request.instruction,
                             chunks=_chunk_records(chunks), system=request.system, max_tokens=job.max_tokens,
                             temperature=job.temperature, submitted=time.time())
    state.save()
    note(f"batch {state.id} submitted ({len(chunks)} requests to {spec.name}); if this run is "
         f"interrupted, continue it with: llm-map --resume {state.id}")
    return state


def _poll_interval() -> float:
    from llmtools.config import setting

    return float(setting("batch_poll_interval", batch.DEFAULT_POLL_INTERVAL, env="LLMTOOLS_BATCH_POLL_INTERVAL",
                         table="map"))


def finish(state: batch.BatchState, job: MapJob, stream_to: Callable[[str], None]) -> list[dict]:
    """Wait for the batch, then combine its answers (ordinary calls); the stack to write."""
    from llmtools.config import resolve_model
    from llmtools.mapping.strategy import content_budget, reduce_results

    spec = resolve_model(state.model)
    bar = CounterBar(f"llm-map batch {state.id}", unit=CALLS)
    bar.start(len(state.chunks))

    def show(progress: batch.Progress) -> None:
        bar.total = progress.total or len(state.chunks)
        bar.update(progress.done)

    try:
        from llmtools import services

        found = batch.wait_for(services.batches(spec), state.id, interval=_poll_interval(), on_progress=show)
    finally:
        bar.finish()
    chunks = _chunks(state.chunks)
    results = [found.get(batch.custom_id(chunk.index)) or CallResult(error=MapFailed("no result in the batch"),
                                                                      attempts=1) for chunk in chunks]
    _report(results, spec.name, job.keep_going)
    with ModelCaller(spec, keep_going=job.keep_going, log=job.log, max_tokens=state.max_tokens,
                     temperature=state.temperature, retries=job.retries) as caller:
        answer = reduce_results(caller, chunks, results, state.instruction,
                                content_budget(spec, state.max_tokens, state.instruction), stream_to,
                                system=state.system)
        cost = caller.tally.cost_usd
    state.path.unlink(missing_ok=True)
    meta = {"tool": "llm-map", "model": spec.name, "strategy": "mapreduce", "batch": state.id,
            "chunks": answer.chunks, "used": answer.used, "cost_usd": round(cost, 8)}
    system = [stack.message("system", state.system)] if state.system else []
    return [*system, *(chunk.as_message() for chunk in chunks), stack.message("user", state.instruction),
            {"role": "assistant", "content": answer.text, "meta": meta}]


def _report(results: list[CallResult], model: str, keep_going: bool) -> None:
    from llmtools.errors import worst_status
    from llmtools.notices import warn

    failed = [(position, result) for position, result in enumerate(results) if not result.ok]
    for position, result in failed:
        warn(f"batch request {position + 1} of {len(results)} failed: {result.error}")
    if failed and not keep_going:
        raise MapFailed(f"{len(failed)} of {len(results)} batch requests to model {model} failed "
                        f"(--keep-going answers from the rest)",
                        status=worst_status(r.error.status for _, r in failed if r.error is not None))
