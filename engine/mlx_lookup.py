"""Prompt-lookup decoding on mlx-lm: `generate_step`'s loop, verifying a draft in each forward pass.

The prompt is evaluated as `generate_step` does it (in chunks, with the progress callback between them,
which is where cancel lands). Then each step feeds the last token and a draft (`prompt_lookup`) in one
forward pass, and samples its positions one after another exactly as `generate_step` samples one token
a step: the logits processors see every token fed before the position, and the sampler is called once
per answer token, so the random stream, and with it the answer, is the one plain decoding gives. The
cache is trimmed after the first position sampled differently from the draft.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator
from typing import Any

from engine.prompt_lookup import Drafter

log = logging.getLogger(__name__)


def lookup_steps(model: Any, prompt: list[int], reused: int, cache: list[Any], *, max_tokens: int, sampler: Callable,
                 logits_processors: list[Callable] | None, prefill_step: int,
                 on_prompt_progress: Callable[[int, int], None]) -> Generator[tuple[int, None], None, None]:
    """(token, None) pairs like `generate_step`'s, for `prompt` whose first `reused` tokens `cache` holds. However
    the caller stops, `cache` ends up holding the prompt and the tokens yielded (perhaps not the last
    one), and nothing after them."""
    import mlx.core as mx
    from mlx_lm.generate import generation_stream
    from mlx_lm.models.cache import trim_prompt_cache

    total = len(prompt) - reused
    on_prompt_progress(0, total)
    done = 0
    with mx.stream(generation_stream):
        while total - done > 1:
            n = min(prefill_step, total - done - 1)
            model(mx.array(prompt[reused + done: reused + done + n])[None], cache=cache)
            mx.eval([c.state for c in cache])
            done += n
            on_prompt_progress(done, total)
    fed = list(prompt)  # every token fed or to be fed: the cache holds all but the last, plus `extra`
    extra = 0  # cache cells after `fed`: the part of a draft not yet checked
    drafter = Drafter()
    count = 0
    try:
        while count < max_tokens:
            draft = drafter.draft(fed, limit=max_tokens - count - 1)
            with mx.stream(generation_stream):
                logits = model(mx.array([fed[-1], *draft])[None], cache=cache)[0]
            extra = len(draft)
            for i in range(len(draft) + 1):
                token = _sample(logits[i: i + 1], fed, sampler, logits_processors)
                count += 1
                fed.append(token)
                if drafter.verdict(token, draft, i):
                    extra -= 1  # the draft's token was this one: its cell is the answer's
                    yield token, None
                    continue
                trim_prompt_cache(cache, extra)  # the draft's rest; `token` itself is fed next step
                extra = 0
                yield token, None
                break
    finally:
        trim_prompt_cache(cache, extra)
        if drafter.drafted:
            log.debug("prompt lookup: %d of %d drafted tokens taken", drafter.taken, drafter.drafted)


def _sample(logits: Any, fed: list[int], sampler: Callable, processors: list[Callable] | None) -> int:
    """One token from one position's logits, as `generate_step`'s `_step` samples it."""
    import mlx.core as mx

    if processors:
        tokens = mx.array(fed)
        for p in processors:
            logits = p(tokens, logits)
    logprobs = logits - mx.logsumexp(logits, keepdims=True)
    return int(sampler(logprobs).item())
