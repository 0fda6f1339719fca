"""llm-map: an instruction over content too long for one call (see llm-map(1))."""

from __future__ import annotations

import click

from llmtools.cli.main import run
from llmtools.cli.options import answer_output_options, log_option, model_options, prompt_options
from llmtools.cli.options import command as llmtools_command
from llmtools.cli.output import read_stdin_messages
from llmtools.errors import UsageError

STRATEGIES = ("auto", "top", "mapreduce")  # llmtools.mapping.strategy.STRATEGIES, without importing it


@llmtools_command("llm-map")
@click.argument("instruction", nargs=-1)
@click.option("--strategy", type=click.Choice(STRATEGIES), default="auto", show_default=True,
              help="auto: answer at once if it fits, else let the model choose top or mapreduce.")
@click.option("--chunk-tokens", type=click.IntRange(32), default=256, show_default=True, metavar="N",
              help="Tokens per chunk (each message is chunked on its own, with 1/8 overlap).")
@click.option("--select", "select_only", is_flag=True,
              help="Write the chunks the answer would be made from (a stack), without asking the model.")
@click.option("--each", is_flag=True,
              help="The instruction over each input message (or line of a text) on its own: one answer "
                   "per input, in order.")
@click.option("-j", "--jobs", type=click.IntRange(1), metavar="N",
              help="Model calls at once (default: by provider; a local model one at a time).")
@click.option("--retries", type=click.IntRange(0), default=2, show_default=True, metavar="N",
              help="Tries again for a call that failed, before it counts as failed.")
@click.option("-k", "--keep-going", is_flag=True,
              help="Answer from the calls that succeeded when some fail for good (and exit 0).")
@click.option("--batch", "use_batch", is_flag=True,
              help="Map through the provider's batch API (Anthropic, OpenAI): half the price, within a day; "
                   "prints the batch id; implies --strategy mapreduce.")
@click.option("--resume", metavar="ID", help="Finish the batch ID that an interrupted --batch run submitted.")
@click.option("--embedder", metavar="NAME",
              help="Ranker: bm25 (default), hashed, local:MODEL, gguf:PATH, openai:MODEL, A+B.")
@model_options
@prompt_options(system_help="System prompt for the answering call.", subject="instruction")
@answer_output_options(stack_help="Write the stack (content, instruction, answer) instead of the text.")
@log_option("Do not log the model calls.")
def command(instruction: tuple[str, ...], strategy: str, chunk_tokens: int, select_only: bool, each: bool,
            jobs: int | None, retries: int, keep_going: bool, use_batch: bool, resume: str | None,
            embedder: str | None, model: str | None,
            temperature: float | None, max_tokens: int | None, thinking: str | None,
            model_timeout: float | None, system: str | None, paths: tuple[str, ...], no_ignore: bool,
            context: tuple[str, ...], answer_format, no_log: bool) -> int:
    """Do INSTRUCTION over long content: the stack on stdin, -p paths and -t text.

    The content is cut into chunks of --chunk-tokens tokens. If it fits the model's
    context it is sent whole; otherwise the chunks are ranked against the instruction
    and either the best ones answer it (top), or the instruction runs over every chunk
    at once and the partial answers are combined (mapreduce).

    \b
      llm-fetch https://example.com/report | llm-map "What does it say about pricing?"
      llm-pdf book.pdf | llm-map --strategy mapreduce "List every person named"
      cat urls.txt | llm-map --each "Which country is this domain from?"
    """
    from llmtools.mapping import run_command

    if select_only and each:
        raise UsageError("--select and --each do not go together")
    if (use_batch or resume) and (select_only or each):
        raise UsageError(f"{'--batch' if use_batch else '--resume'} maps every chunk; it does not go with "
                         f"{'--select' if select_only else '--each'}")
    words = " ".join(instruction).strip()
    if resume:
        return _write_batch(resume, None, answer_format, keep_going=keep_going, no_log=no_log, retries=retries)
    if not words:
        raise UsageError("no instruction given (llm-map \"what to do with the content\")")
    run_command.warm_up_in_background(
        model=model, embedder=embedder, tokenizer=not each,
        ranker=select_only or (strategy in ("auto", "top") and not each and not use_batch),
        model_route=not (select_only or use_batch))
    piped, added = _content(paths, context, use_ignore_files=not no_ignore)
    job = run_command.MapJob(
        instruction=words, messages=piped, added=added, system=system,
        strategy=strategy,
        chunk_tokens=chunk_tokens, embedder=embedder, model=model, model_timeout=model_timeout,
        jobs=jobs, retries=retries, keep_going=keep_going, log=not no_log, temperature=temperature,
        max_tokens=max_tokens, thinking=thinking)
    if select_only:
        return _write_selection(run_command.select_chunks(job), answer_format)
    if each:
        return _write_each(run_command.run_each(job), answer_format)
    if use_batch:
        return _write_batch(None, job, answer_format, keep_going=keep_going, no_log=no_log, retries=retries)
    return _write_answer(job, answer_format)


def _content(paths: tuple[str, ...], context: tuple[str, ...], *,
             use_ignore_files: bool) -> tuple[list[dict], list[dict]]:
    """(the piped stack, what -p and -t add): only the piped stack can end with its question."""
    from llmtools import stack
    from llmtools.inputs import path_messages

    piped = read_stdin_messages()
    added = path_messages(list(paths), use_ignore_files=use_ignore_files) if paths else []
    added.extend(stack.message("user", text) for text in context)
    return piped, added


def _write_selection(chunks: list[dict], answer_format) -> int:
    from llmtools.cli.output import write_content

    return write_content(chunks, "jsonl" if answer_format.stack else None, raw=answer_format.raw)


def _write_each(answers: list[dict], answer_format) -> int:
    from llmtools.cli.output import TextWriter, renders_markdown, write_stack

    if answer_format.stack:
        write_stack(answers)
        return 0
    writer = TextWriter(markdown=renders_markdown(answer_format.raw))
    for message in answers:
        # One line per input keeps `paste inputs.txt -` lined up: an answer's own newlines
        # would shift everything after it.
        writer.write(" ".join(str(message["content"]).split()) + "\n")
    writer.close()
    return 0


def _write_answer(job, answer_format) -> int:
    from llmtools.cli.output import AnswerWriter
    from llmtools.mapping import run_command

    writer = AnswerWriter(answer_format)
    messages = None
    try:
        messages = run_command.run_answer(job, stream_to=writer.text)
    finally:
        writer.close(messages)
    return 0


def _write_batch(resume: str | None, job, answer_format, *, keep_going: bool, no_log: bool, retries: int) -> int:
    from llmtools.cli.output import AnswerWriter
    from llmtools.mapping import batch, batch_run, run_command

    if job is None:
        job = run_command.MapJob(instruction="", messages=[], keep_going=keep_going, log=not no_log,
                                 retries=retries)
    state = batch.BatchState.load(resume) if resume else batch_run.submit(job)
    writer = AnswerWriter(answer_format)
    messages = None
    try:
        messages = batch_run.finish(state, job, stream_to=writer.text)
    finally:
        writer.close(messages)
    return 0


def main() -> None:
    run(command)


if __name__ == "__main__":
    main()
