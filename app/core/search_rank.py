"""Ranking a batch of search matches by BM25 computed within the batch.

SQLite's own `bm25()` weighs each word by how rare it is in the whole history, and counts every match of
every word to find out: for a common word in 200k messages that alone took longer than the whole search
may. Ranked within a batch of the newest matches instead, the cost stays flat as the history grows, and
the order within the batch is the same kind of order (more of the words, in shorter messages, first).
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Sequence

K1, B = 1.2, 0.75  # the usual BM25 constants, the ones SQLite's bm25() uses


def fold(text: str) -> str:
    """Lower case without accents, as the search index compares words."""
    if text.isascii():
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def rank(texts: Sequence[str], words: Sequence[str]) -> list[int]:
    """Indexes of `texts` best first, each of `words` matching the start of a word; ties keep the order
    given (the batch comes newest first)."""
    if not texts:
        return []
    starts = [re.compile(r"(?<!\w)" + re.escape(fold(w))) for w in words]
    counts: list[list[int]] = []
    lengths: list[int] = []
    for text in texts:
        folded = fold(text)
        lengths.append(max(len(folded), 1))  # in characters: only its ratio to the average counts
        counts.append([len(start.findall(folded)) for start in starts])
    n, average = len(texts), sum(lengths) / len(texts)
    having = [sum(1 for c in counts if c[j]) for j in range(len(starts))]  # messages with each word
    idf = [math.log((n - d + 0.5) / (d + 0.5) + 1) for d in having]
    scores = [sum(w * tf * (K1 + 1) / (tf + K1 * (1 - B + B * length / average)) for w, tf in zip(idf, c, strict=True))
              for c, length in zip(counts, lengths, strict=True)]
    return sorted(range(n), key=lambda i: -scores[i])
