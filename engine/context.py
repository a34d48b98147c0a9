"""Context budget: which messages fit in the model's window, and which are "forgotten".

The prompt never exceeds `n_ctx - reserve` (reserve = max new tokens). When the history is too
long, the oldest turns go first; the system prompt and the newest user message always stay.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from engine.types import ContextOverflowError, Message

MIN_ANSWER_TOKENS = 64  # below this an answer is not worth starting


@dataclass(frozen=True)
class Fit:
    """The messages that fit (indices into the request) and what the prompt costs."""

    kept: tuple[int, ...]
    forgotten: tuple[int, ...]
    tokens: int


def fit_messages(
    messages: Sequence[Message], count_tokens: Callable[[Sequence[Message]], int], budget: int
) -> Fit:
    """Drop the oldest non-system messages until the rendered prompt fits in `budget` tokens.

    A whole exchange goes at once (a user message and the answers after it), so the prompt never
    starts with an orphan answer. Raises ContextOverflowError if the system prompt plus the newest
    user message alone do not fit.
    """
    pinned = {i for i, m in enumerate(messages) if m.role == "system"}
    last_user = max((i for i, m in enumerate(messages) if m.role == "user"), default=len(messages) - 1)
    droppable = [i for i in range(last_user) if i not in pinned]
    dropped: list[int] = []  # in order, oldest first
    while True:
        gone = set(dropped)
        kept = tuple(i for i in range(len(messages)) if i not in gone)
        tokens = count_tokens([messages[i] for i in kept])
        if tokens <= budget:
            return Fit(kept, tuple(dropped), tokens)
        remaining = [i for i in droppable if i not in gone]
        if not remaining:
            raise ContextOverflowError(
                f"Your message is too long for the model: it needs about {tokens} tokens and only "
                f"{budget} fit with room for the answer. Shorten it, or lower the maximum answer length "
                "in Settings.",
                detail=f"prompt tokens {tokens} > budget {budget}",
            )
        # Drop the oldest message and any answers that followed it, up to the next user turn.
        first = remaining[0]
        dropped.append(first)
        for i in remaining[1:]:
            if messages[i].role == "user":
                break
            dropped.append(i)


def answer_budget(n_ctx: int, max_tokens: int) -> int:
    """Prompt tokens allowed when `max_tokens` must stay free for the answer."""
    return max(n_ctx - max(max_tokens, MIN_ANSWER_TOKENS), 1)


def fit_prompt(
    messages: Sequence[Message], count_tokens: Callable[[Sequence[Message]], int], n_ctx: int, max_tokens: int,
    forget_oldest: bool = True,
) -> tuple[Fit, int]:
    """Fit the history with `max_tokens` reserved for the answer; if even the newest message
    does not fit with that reserve, accept a shorter answer (at least MIN_ANSWER_TOKENS) rather
    than none. Returns the fit and the number of new tokens allowed. With `forget_oldest=False`
    a history that no longer fits raises ContextOverflowError instead of leaving turns out."""
    try:
        fit = fit_messages(messages, count_tokens, answer_budget(n_ctx, max_tokens))
    except ContextOverflowError:
        fit = fit_messages(messages, count_tokens, n_ctx - MIN_ANSWER_TOKENS)
    if fit.forgotten and not forget_oldest:
        raise ContextOverflowError(
            f"This conversation no longer fits in what the model can read at once ({n_ctx} tokens). "
            "Start a new chat, or choose to leave out the oldest messages in Settings → Chat.",
            detail=f"{len(fit.forgotten)} messages would be left out")
    return fit, max(min(max_tokens, n_ctx - fit.tokens), 1)
