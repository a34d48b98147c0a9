"""Prompt-lookup drafts: the tokens that followed the latest earlier occurrence of the conversation's last
few tokens. A model verifies a draft in one batch (`llamacpp_lookup`, `mlx_lookup`): it samples every
position of the batch as it would have one token at a time, and keeps the draft up to the first token it
samples differently. Answers that quote the conversation (code being edited, a text being corrected, a
name repeated) then take one forward pass for several tokens.

A batch costs more than one token on a CPU, so the draft length adapts: it grows while drafts are taken
whole and shrinks to what was taken when they are not. A draft refused outright pauses drafting for 1, 2,
4 … up to 32 tokens (back to none once a draft is taken), so an answer with nothing to quote, whose
history still repeats itself here and there, pays a refused batch at most about once in 32 tokens.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

MAX_DRAFT = 16
FIRST_DRAFT = 4
MAX_PAUSE = 32


class Drafter:
    """Drafts from a token history and learns from what the model took."""

    def __init__(self) -> None:
        self.length = FIRST_DRAFT
        self.pause = 0  # steps left without drafting
        self.backoff = 0  # the pause after the next draft refused outright
        self.drafted = 0  # totals, for the log
        self.taken = 0

    def draft(self, history: Sequence[int] | np.ndarray, limit: int = MAX_DRAFT) -> list[int]:
        """Up to min(current length, `limit`) tokens that followed the latest earlier occurrence of
        `history`'s last 3 tokens, else of its last 2 (one token alone predicts too little in prose);
        empty if neither occurred. Runs once per answer token: one pass over the history."""
        if self.pause:
            self.pause -= 1
            return []
        k = min(self.length, limit)
        ids = np.asarray(history)
        m = len(ids)
        if k <= 0 or m < 3:
            return []
        pairs = np.flatnonzero(ids[: m - 2] == ids[m - 2])  # each leaves a token after the pair
        pairs = pairs[ids[pairs + 1] == ids[m - 1]]
        if not pairs.size:
            return []
        triples = pairs[(pairs >= 1) & (ids[pairs - 1] == ids[m - 3])]
        s = int((triples if triples.size else pairs)[-1]) + 2
        found = ids[s: s + k].tolist()
        self.drafted += len(found)
        return found

    def verdict(self, token: int, draft: Sequence[int], i: int) -> bool:
        """Whether the model's `token` at position `i` of a step took `draft[i]` (the step goes on);
        at the step's last position, the draft length adapts to how much of `draft` was taken."""
        if i < len(draft) and token == draft[i]:
            self.taken += 1
            return True
        if draft:
            self.length = min(self.length * 2, MAX_DRAFT) if i == len(draft) else max(i, 1)
            self.backoff = 0 if i else min(max(self.backoff * 2, 1), MAX_PAUSE)
            self.pause = self.backoff
        return False
