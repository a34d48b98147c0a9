"""GenerationStats from the timings of one generation, with the same meaning for every backend."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from engine.types import GenerationStats


@dataclass(frozen=True)
class PromptStats:
    """What the stats report about one request's prompt."""

    started: float  # perf_counter when the request arrived
    tokens: int = 0
    reused: int = 0  # prompt tokens the KV cache already held
    forgotten: tuple[int, ...] = ()  # indices of the messages left out to fit the context


def generation_stats(prompt: PromptStats, out: Sequence[int], t_first: float | None) -> GenerationStats:
    """Stats for a generation on `prompt` that produced its first token at `t_first` (perf_counter;
    None: no token); `out` are the generated ids without the stop token."""
    now = time.perf_counter()
    first = t_first if t_first is not None else now
    evaluated = max(prompt.tokens - prompt.reused, 0)
    gen_time = now - first
    return GenerationStats(
        prompt_tokens=prompt.tokens, reused_tokens=prompt.reused, completion_tokens=len(out),
        ttft_s=first - prompt.started,
        tokens_per_s=(len(out) - 1) / gen_time if len(out) > 1 and gen_time > 0 else 0.0,
        prompt_tokens_per_s=evaluated / (first - prompt.started) if first > prompt.started else 0.0,
        total_s=now - prompt.started, forgotten=prompt.forgotten, token_ids=tuple(out),
    )
