"""GenerationStats from the timings of one generation, with the same meaning for every backend."""

from __future__ import annotations

import time
from collections.abc import Sequence

from engine.types import GenerationStats


def generation_stats(t0: float, prompt_tokens: int, reused: int, out: Sequence[int], t_first: float | None,
                     forgotten: Sequence[int] | None) -> GenerationStats:
    """Stats for a generation that started at `t0` (perf_counter) and produced its first token at
    `t_first` (None: no token); `out` are the generated ids without the stop token."""
    now = time.perf_counter()
    first = t_first if t_first is not None else now
    evaluated = max(prompt_tokens - reused, 0)
    gen_time = now - first
    return GenerationStats(
        prompt_tokens=prompt_tokens, reused_tokens=reused, completion_tokens=len(out),
        ttft_s=first - t0,
        tokens_per_s=(len(out) - 1) / gen_time if len(out) > 1 and gen_time > 0 else 0.0,
        prompt_tokens_per_s=evaluated / (first - t0) if first > t0 else 0.0,
        total_s=now - t0, forgotten=tuple(forgotten or ()), token_ids=tuple(out),
    )
