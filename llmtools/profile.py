"""`--profile` lines: what one model call (or a run of them) took and cost, for stderr.

    profile: step 1 model=M ttft=0.412s total=1.930s in=2500tok (6067.9 tok/s) out=40tok (26.8 tok/s)
             cache_read=2400tok cache_write=90tok cost=$0.001234
    profile: total calls=6 ttft=1.2s total=8.1s in=15300tok (full rate 510, cache read 12900,
             cache write 1890) out=240tok cost=$0.01

`in` is the whole prompt; of it, `cache_read` came from the provider's prompt cache and
`cache_write` was stored in it, each billed at its own price. "full rate" is the rest:
what the input price applies to. (Each line is printed on one line.)
"""

from __future__ import annotations

from collections.abc import Sequence


def profile_line(outcome, model_name: str, step: int | None = None) -> str:
    """One call's line (`step`: its number in a run of calls); `outcome` is an `exchange.Outcome`."""
    rate_in, rate_out = outcome.tokens_per_second()
    fields = [f"step {step}"] if step is not None else []
    fields.append(f"model={model_name}")
    if outcome.ttft_s is not None:
        fields.append(f"ttft={outcome.ttft_s:.3f}s")
    if outcome.total_s is not None:
        fields.append(f"total={outcome.total_s:.3f}s")
    if outcome.input_tokens is not None:
        fields.append(f"in={outcome.input_tokens}tok" + (f" ({rate_in:.1f} tok/s)" if rate_in else ""))
    if outcome.output_tokens is not None:
        fields.append(f"out={outcome.output_tokens}tok" + (f" ({rate_out:.1f} tok/s)" if rate_out else ""))
    if outcome.cache_read_tokens is not None:
        fields.append(f"cache_read={outcome.cache_read_tokens}tok")
    if outcome.cache_write_tokens is not None:
        fields.append(f"cache_write={outcome.cache_write_tokens}tok")
    fields.append(_cost(outcome.cost_usd))
    return "profile: " + " ".join(fields)


def total_line(outcomes: Sequence) -> str:
    """The sum over several calls (llm-exec's steps), with the input split by how it is billed."""
    def total(field: str) -> int:
        return sum(getattr(outcome, field) or 0 for outcome in outcomes)

    prompt, read, written = total("input_tokens"), total("cache_read_tokens"), total("cache_write_tokens")
    full_rate = max(0, prompt - read - written)
    costs = [outcome.cost_usd for outcome in outcomes]
    fields = [f"calls={len(outcomes)}",
              f"ttft={sum(outcome.ttft_s or 0 for outcome in outcomes):.3f}s",
              f"total={sum(outcome.total_s or 0 for outcome in outcomes):.3f}s",
              f"in={prompt}tok (full rate {full_rate}, cache read {read}, cache write {written})",
              f"out={total('output_tokens')}tok",
              _cost(None if any(cost is None for cost in costs) else sum(costs))]
    return "profile: total " + " ".join(fields)


def _cost(value: float | None) -> str:
    return "cost=" + (f"${value:.6f}" if value is not None else "unknown")


def run_profile(exchanges: Sequence) -> str:
    """Lines for a run of calls (llm-exec's steps): one per call, then the total."""
    lines = [profile_line(exchange.outcome, exchange.spec.name, step=number)
             for number, exchange in enumerate(exchanges, start=1)]
    if exchanges:
        lines.append(total_line([exchange.outcome for exchange in exchanges]))
    return "".join(line + "\n" for line in lines)
