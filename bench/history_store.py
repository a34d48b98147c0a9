"""A heavy user's history written straight into the store: `conversations` conversations of 20–60
messages (40 on average), questions of a line or two, answers of prose with code blocks, lists and inline
code, dates spread over two years, a few pinned. Written through the app's own store
(`insert_conversations`), so the rows and the search index are exactly what the app writes; cached per
size, since 5,000 conversations take minutes.
"""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import NamedTuple

from app.core.store import Store
from app.core.store_types import Conversation, StoredMessage
from bench.search_speed import vocabulary

YEAR = 365 * 86_400.0
CODE = (
    "```python\ndef {name}(items, size={n}):\n    \"\"\"Split `items` into chunks of `size`.\"\"\"\n"
    "    for start in range(0, len(items), size):\n        yield items[start:start + size]\n\n"
    "print(list({name}(range({m}))))\n```",
    "```bash\nfind . -name '*.{ext}' -mtime -{n} -print0 | xargs -0 grep -n \"{word}\"\n```",
    "```sql\nSELECT {word}, count(*) FROM {name} WHERE created_at > {m} GROUP BY {word} ORDER BY 2 DESC;\n```",
    "```javascript\nconst {name} = async (url) => {{\n  const res = await fetch(url);\n  if (!res.ok) throw new "
    "Error(`HTTP ${{res.status}}`);\n  return res.json();\n}};\n```",
)


def _prose(rng: random.Random, words: list[str], weights: list[float], k: int) -> str:
    out = rng.choices(words, weights, k=k)
    sentences = [" ".join(out[i:i + 12]).capitalize() + "." for i in range(0, len(out), 12)]
    return " ".join(sentences)


def _answer(rng: random.Random, words: list[str], weights: list[float]) -> str:
    parts = [_prose(rng, words, weights, rng.randint(60, 220))]
    if rng.random() < 0.6:
        fill = {"name": rng.choice(words[100:2000]), "n": rng.randint(2, 9), "m": rng.randint(10, 999),
                "ext": rng.choice(("py", "md", "txt")), "word": rng.choice(words[:500])}
        parts.append(rng.choice(CODE).format(**fill))
    if rng.random() < 0.4:
        parts.append("\n".join(f"- **{rng.choice(words[:800])}**: {_prose(rng, words, weights, 8)}"
                               for _ in range(rng.randint(2, 5))))
    parts.append(_prose(rng, words, weights, rng.randint(20, 80)) + f" See `{rng.choice(words[:400])}()`.")
    return "\n\n".join(parts)


def conversation(i: int, n: int, rng: random.Random, words: list[str], weights: list[float],
                 length: int | None = None) -> tuple[Conversation, list[StoredMessage]]:
    """Conversation `i` of `n`: the newest is 0, the oldest two years back."""
    updated = time.time() - (i / max(n, 1)) * 2 * YEAR - rng.random() * 3600
    count = length or 2 * rng.randint(10, 30)
    created = updated - count * 60
    cid = f"{i:08d}" + f"{rng.getrandbits(96):024x}"
    msgs: list[StoredMessage] = []
    parent = None
    for k in range(count):
        mid = f"{cid[:16]}{k:016x}"
        if k % 2 == 0:
            text = _prose(rng, words, weights, rng.randint(6, 30)).rstrip(".") + "?"
            msgs.append(StoredMessage(mid, cid, parent, "user", text, "complete", created + k * 60))
        else:
            msgs.append(StoredMessage(mid, cid, parent, "assistant", _answer(rng, words, weights), "complete",
                                      created + k * 60, model_id="tinyllama-1.1b-chat-v0.4", quant="Q4_K_M",
                                      completion_tokens=rng.randint(60, 400), tokens_per_s=20.0, ttft_s=0.3))
        parent = mid
    title = " ".join(rng.choices(words[:600], k=rng.randint(2, 6))).capitalize()
    conv = Conversation(cid, title, created, updated, pinned=i % 400 == 7, current_leaf_id=parent)
    return conv, msgs


class History(NamedTuple):
    """A generated history: the conversation the benchmark opens (`long`: 60 messages, a few weeks old)
    and how many messages it holds."""

    ids: dict[str, str]
    messages: int


def build_history(path: Path, conversations: int, seed: int = 7) -> History:
    """Write the history to `path` (kept when it already holds it), through the app's store, which is
    closed cleanly afterwards as the app would leave it."""
    marks = {"long": f"{conversations // 10:08d}"}
    store, _ = Store.open(path)
    try:
        if len(store.list_conversations()) != conversations:
            rng = random.Random(seed)
            words = vocabulary(rng)
            weights = [1 / (rank + 1) for rank in range(len(words))]
            batch: list[tuple[Conversation, list[StoredMessage]]] = []
            for i in range(conversations):
                length = 60 if f"{i:08d}" == marks["long"] else None
                batch.append(conversation(i, conversations, rng, words, weights, length))
                if len(batch) == 250 or i == conversations - 1:
                    store.insert_conversations(batch)
                    batch = []
        have = store.list_conversations()
        ids = {k: next(c.id for c in have if c.id.startswith(v)) for k, v in marks.items()}
        return History(ids, sum(len(store.messages(c.id)) for c in have))
    finally:
        store.close()
