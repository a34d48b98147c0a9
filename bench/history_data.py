"""A heavy user's generated history in TinyChat's own export format, written conversation by conversation
so that histories of any size are made in flat memory.

Each conversation holds 20–60 messages (40 on average: 5,000 conversations make 200k messages): questions
of a sentence or two, answers of prose and fenced code with the token ids the engine saved, now and then a
regenerated answer as a second branch. Everything is seeded, so the same call writes the same file, and
every value is what TinyChat itself would write, so the file round-trips exactly through import and export.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from app.core import timestamps
from app.core.import_records import FORMAT_NAME, FORMAT_VERSION
from app.core.settings import Sampling

START = 1_704_067_200.0  # 2024-01-01 UTC
WORDS = ("the", "function", "returns", "a", "list", "of", "values", "when", "you", "call", "it", "with", "an",
         "argument", "this", "means", "that", "each", "item", "is", "checked", "before", "loop", "ends", "and",
         "error", "file", "path", "read", "write", "memory", "python", "because", "first", "then", "string")
CODE = ('def {name}(items: list[int]) -> int:\n    total = 0\n    for item in items:\n        if item > {n}:\n'
        '            total += item\n    return total\n',
        'with open("{name}.txt", encoding="utf-8") as fh:\n    for line in fh:\n        print(line.strip())\n',
        'SELECT id, title FROM {name} WHERE updated_at > {n} ORDER BY updated_at DESC LIMIT 50;\n')


def _prose(rng: random.Random, words: int) -> str:
    sentences, left = [], words
    while left > 0:
        n = min(left, rng.randint(6, 18))
        sentences.append(" ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + ".")
        left -= n
    return " ".join(sentences)


def _answer(rng: random.Random) -> str:
    parts = [_prose(rng, rng.randint(80, 260))]
    if rng.random() < 0.6:
        code = rng.choice(CODE).format(name=rng.choice(WORDS) + str(rng.randint(1, 99)), n=rng.randint(0, 999))
        parts += ["```python\n" + code + "```", _prose(rng, rng.randint(20, 80))]
    return "\n\n".join(parts)


def _message(rng: random.Random, cid: str, k: int, parent: str | None, role: str, at: float) -> dict[str, Any]:
    content = _answer(rng) if role == "assistant" else _prose(rng, rng.randint(8, 40)) + "?"
    answer = role == "assistant"
    tokens = [rng.randrange(32_000) for _ in range(len(content) // 4)] if answer else None
    return {
        "id": f"{cid}m{k:03d}", "parent_id": parent, "role": role, "content": content, "status": "complete",
        "created_at": timestamps.iso_utc(at), "model_id": "tinyllama-1.1b-chat-v0.4" if answer else None,
        "quant": "Q4_K_M" if answer else None, "chat_format": "chatml" if answer else None,
        "prompt_tokens": rng.randint(20, 2000) if answer else None,
        "completion_tokens": len(tokens) if tokens else None, "reused_tokens": rng.randint(0, 1500) if answer else None,
        "ttft_s": round(rng.uniform(0.05, 3.0), 3) if answer else None,
        "tokens_per_s": round(rng.uniform(5, 60), 2) if answer else None, "error": None, "token_ids": tokens,
    }


def conversation(index: int, seed: int = 0) -> dict[str, Any]:
    """Conversation `index` of the history `seed`, as the export writes it (messages parents first)."""
    rng = random.Random(seed * 1_000_003 + index)
    cid = f"h{seed}c{index:06d}"
    at = START + index * 3_600.0
    target = rng.randint(20, 60)
    messages: list[dict[str, Any]] = []
    parent: str | None = None
    while len(messages) < target:
        question = _message(rng, cid, len(messages), parent, "user", at)
        messages.append(question)
        at += rng.randint(5, 600)
        answer = _message(rng, cid, len(messages), question["id"], "assistant", at)
        messages.append(answer)
        if rng.random() < 0.1 and len(messages) < target:  # regenerated: the new answer is the one on show
            at += rng.randint(5, 60)
            answer = _message(rng, cid, len(messages), question["id"], "assistant", at)
            messages.append(answer)
        parent = answer["id"]
        at += rng.randint(5, 600)
    return {
        "id": cid, "title": _prose(rng, 5)[:48].rstrip(" ."), "created_at": timestamps.iso_utc(START + index * 3_600.0),
        "updated_at": timestamps.iso_utc(at), "pinned": index % 97 == 0, "model_id": "tinyllama-1.1b-chat-v0.4",
        "quant": "Q4_K_M", "chat_format": "chatml", "system_prompt": "Be brief." if index % 5 == 0 else "",
        "sampling": Sampling(seed=index).to_json() if index % 7 == 0 else None,
        "current_leaf_id": parent, "messages": messages,
    }


def conversations(count: int, seed: int = 0) -> Iterator[dict[str, Any]]:
    """The history's conversations, one at a time."""
    return (conversation(i, seed) for i in range(count))


def write_history(path: Path, count: int, seed: int = 0) -> int:
    """Write a history of `count` conversations to `path` as a JSON export; returns its message count."""
    messages = 0
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(json.dumps({"format": FORMAT_NAME, "version": FORMAT_VERSION,
                             "exported_at": timestamps.iso_utc(START)})[:-1] + ', "conversations": [')
        for i, conv in enumerate(conversations(count, seed)):
            fh.write(("\n" if i == 0 else ",\n") + json.dumps(conv, ensure_ascii=False))
            messages += len(conv["messages"])
        fh.write("\n]}\n")
    return messages
