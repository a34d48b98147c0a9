"""Prompt token ids with earlier answers spliced in as the ids that were generated (KV reuse).

Re-tokenizing an answer's text rarely gives back the ids the model produced, and then the KV
cache no longer matches from that point on. Every backend builds prompts through `prompt_ids`,
with its own tokenizer, and compares them with its cache through `common_prefix`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from engine.chat_format import ChatFormat
from engine.literal_tokens import LiteralTokenizer
from engine.types import Message


def prompt_ids(fmt: ChatFormat, messages: Sequence[Message], tokenize: Callable[[str], list[int]],
               literal: LiteralTokenizer | None = None) -> list[int]:
    """Token ids of `fmt`'s prompt for `messages`; `tokenize(text)` must parse special tokens and
    add no BOS (the rendered text carries its own). With `literal`, a message that contains a
    control or added token's text, say `<|im_start|>`, keeps it as text instead of opening a turn."""
    parts = fmt.render(messages)
    ids: list[int] = []
    pending = ""

    def flush() -> None:
        nonlocal pending, ids
        ids += tokenize(pending) if pending else []
        pending = ""

    for i, part in enumerate(parts):
        msg = messages[part.message_index] if part.message_index is not None else None
        following = parts[i + 1].text if i + 1 < len(parts) else ""
        # Splice only where the text that follows starts with a control token: tokenizing the
        # pieces separately then gives exactly what tokenizing the whole text would.
        if (msg is not None and msg.role == "assistant" and msg.token_ids
                and following.startswith(fmt.stop_tokens)):
            flush()
            ids += list(msg.token_ids)
        elif msg is not None and literal is not None and literal.applies_to(part.text):
            # Rare, so the small cost is fine: the piece is tokenized on its own, which may add the
            # tokenizer's word-start space before it.
            flush()
            ids += literal(part.text)
        else:
            pending += part.text
    flush()
    return ids


def control_token_ids(fmt: ChatFormat, tokenize: Callable[[str], list[int]]) -> frozenset[int]:
    """Ids of `fmt`'s control tokens that are single tokens in the vocab (`tokenize` parses special
    tokens). None belongs in an answer: a model that writes ChatML's `<|im_start|>` has begun a
    turn of its own, so the answer ends there."""
    found = (tokenize(t) for t in fmt.control_tokens)
    return frozenset(ids[0] for ids in found if len(ids) == 1)


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """Length of the longest common prefix of two id sequences."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n
