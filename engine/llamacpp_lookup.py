"""Prompt-lookup decoding on llama-cpp-python: the sampling loop after the first token.

`Llama(draft_model=LlamaPromptLookupDecoding())` would do this inside `Llama.generate`, but it turns on
`logits_all`: logits for every prompt token are computed and copied into a 2048 × 32000 float array
(262 MB), which costs prompt speed and the memory target. Here only the draft's positions ask for
logits. Each step evaluates the last token and a draft in one batch, samples position after position
with the generation's own sampler chain (the same calls, in the same order, as one token at a time), and
drops the cache cells after the first position sampled differently from the draft. The output is the
one plain decoding would give, at any temperature and seed.
"""

from __future__ import annotations

import logging
from collections.abc import Generator
from typing import Any

from engine.prompt_lookup import Drafter

log = logging.getLogger(__name__)


def lookup_tokens(llm: Any, last: int) -> Generator[int, None, None]:
    """Tokens after `last`, the first one `llm.generate` sampled (not yet evaluated); `llm`'s record of
    evaluated ids (`input_ids[:n_tokens]`) stays true to its cache however the caller stops."""
    drafter = Drafter()
    try:
        while True:
            n_past = llm.n_tokens
            llm.input_ids[n_past] = last  # where the batch puts it anyway: the history is then a view
            draft = drafter.draft(llm.input_ids[: n_past + 1], limit=llm.n_ctx() - n_past - 1)
            batch = [last, *draft]
            llm._batch.set_batch(batch, n_past, logits_all=True)
            llm._ctx.decode(llm._batch)
            llm.input_ids[n_past: n_past + len(batch)] = batch
            llm.n_tokens = n_past + len(batch)
            for i in range(len(batch)):
                last = llm._sampler.sample(llm._ctx, i)
                took = drafter.verdict(last, draft, i)
                yield last
                if not took:
                    break
            if n_past + i + 1 < llm.n_tokens:  # the rest of the draft was not taken
                llm._ctx.kv_cache_seq_rm(-1, n_past + i + 1, -1)
                llm.n_tokens = n_past + i + 1
    finally:
        if drafter.drafted:
            log.debug("prompt lookup: %d of %d drafted tokens taken", drafter.taken, drafter.drafted)
