"""Prompt token ids with earlier answers spliced in as the ids that were generated (KV reuse).

Re-tokenizing an answer's text rarely gives back the ids the model produced, and then the KV
cache no longer matches from that point on. Every backend builds prompts through `prompt_ids`,
with its own tokenizer, and compares them with its cache through `common_prefix`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from engine.chat_format import ChatFormat
from engine.types import Message


def prompt_ids(fmt: ChatFormat, messages: Sequence[Message], tokenize: Callable[[str], list[int]]) -> list[int]:
    """Token ids of `fmt`'s prompt for `messages`; `tokenize(text)` must parse special tokens and
    add no BOS (the rendered text carries its own)."""
    parts = fmt.render(messages)
    ids: list[int] = []
    pending = ""
    for i, part in enumerate(parts):
        msg = messages[part.message_index] if part.message_index is not None else None
        following = parts[i + 1].text if i + 1 < len(parts) else ""
        # Splice only where the text that follows starts with a control token: tokenizing the
        # pieces separately then gives exactly what tokenizing the whole text would.
        if (msg is not None and msg.role == "assistant" and msg.token_ids
                and following.startswith(fmt.stop_tokens)):
            ids += tokenize(pending) if pending else []
            ids += list(msg.token_ids)
            pending = ""
        else:
            pending += part.text
    return ids + (tokenize(pending) if pending else [])


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """Length of the longest common prefix of two id sequences."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n
