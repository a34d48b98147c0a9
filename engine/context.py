"""Context budget: which messages fit in the model's window, and which are "forgotten".

The prompt never exceeds `n_ctx - reserve` (reserve = max new tokens). When the history is too
long, the oldest turns go first; the system prompt and the newest user message always stay.

Old turns leave in blocks of about half the budget, not one exchange at a time. Dropping one exchange
per turn would change the prompt right after the system prompt on every turn, so the KV cache would
match only up to there and every turn would read the whole history again. With blocks, the prompt
after a drop is a prefix of the following turns' prompts until the next block must go: those turns
evaluate only their new tokens. (A KV "context shift" avoids even the one re-read, but its result is
not what the model computes on the kept text: the kept turns' cache entries were computed while the
dropped turns were in view. docs/engine.md has the measurement.)

Block boundaries depend only on the messages before them, so as a conversation grows the same
messages stay forgotten until the next whole block goes, whatever the engine's cache holds; the
same history always gives the same fit.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from engine.types import ContextOverflowError, Message

MIN_ANSWER_TOKENS = 64  # below this an answer is not worth starting
BLOCK_FRACTION = 0.5  # old turns leave in blocks of at least this share of the prompt budget
MESSAGE_OVERHEAD = 4  # template tokens around a message's text (ChatML: <|im_start|>role\n … <|im_end|>\n)

CountTokens = Callable[[Sequence[Message]], int]
MessageSize = Callable[[Message], int]


@dataclass(frozen=True)
class Fit:
    """The messages that fit (indices into the request) and what the prompt costs."""

    kept: tuple[int, ...]
    forgotten: tuple[int, ...]
    tokens: int


def message_sizer(tokenize: Callable[[str], list[int]]) -> MessageSize:
    """A message's approximate size in tokens, for placing block boundaries: its stored answer ids, or
    its text tokenized, plus the template's usual overhead. Sizes are remembered by text, because every
    turn measures the whole history again."""

    @functools.lru_cache(maxsize=4096)
    def text_tokens(text: str) -> int:
        return len(tokenize(text))

    def size(m: Message) -> int:
        return (len(m.token_ids) if m.token_ids else text_tokens(m.content)) + MESSAGE_OVERHEAD

    return size


def _exchanges(messages: Sequence[Message]) -> list[list[int]]:
    """The droppable messages, oldest first, in exchanges: a user message and the answers after it,
    up to the next user message. The system prompt and the newest user message are not droppable."""
    pinned = {i for i, m in enumerate(messages) if m.role == "system"}
    last_user = max((i for i, m in enumerate(messages) if m.role == "user"), default=len(messages) - 1)
    groups: list[list[int]] = []
    for i in range(last_user):
        if i in pinned:
            continue
        if not groups or messages[i].role == "user":
            groups.append([])
        groups[-1].append(i)
    return groups


def _block_ends(groups: list[list[int]], sizes: list[int], block: int) -> list[int]:
    """Numbers of leading exchanges that make up whole blocks of at least `block` tokens, greedily
    from the oldest: 0, then the end of each complete block. Each end depends only on what is before it."""
    ends, acc = [0], 0
    for g, group in enumerate(groups):
        acc += sum(sizes[i] for i in group)
        if acc >= block:
            ends.append(g + 1)
            acc = 0
    return ends


def fit_messages(messages: Sequence[Message], count_tokens: CountTokens, budget: int,
                 size: MessageSize | None = None) -> Fit:
    """Drop the oldest non-system messages, a block at a time, until the rendered prompt fits in
    `budget` tokens.

    Whole exchanges go (a user message and the answers after it), so the prompt never starts with an
    orphan answer. The fit is the fewest whole blocks whose removal makes the prompt fit; if removing
    every complete block is not enough, further exchanges go one at a time. `size` estimates a
    message's tokens to place the blocks (default: `count_tokens([m])`); what fits is decided with
    `count_tokens` alone. Raises ContextOverflowError if the system prompt plus the newest user
    message alone do not fit.
    """
    size = size or (lambda m: count_tokens([m]))
    groups = _exchanges(messages)

    def fit_after(n_groups: int) -> Fit:
        gone = {i for group in groups[:n_groups] for i in group}
        kept = tuple(i for i in range(len(messages)) if i not in gone)
        return Fit(kept, tuple(sorted(gone)), count_tokens([messages[i] for i in kept]))

    sizes = [size(m) for m in messages]
    ends = _block_ends(groups, sizes, max(int(budget * BLOCK_FRACTION), 1))
    # Start where the estimate says the prompt fits, then move to the first end that really does:
    # usually two exact counts, whatever the history's length.
    dropped_est = [sum(sizes[i] for group in groups[:n] for i in group) for n in ends]
    total_est = sum(sizes)
    k = next((k for k, d in enumerate(dropped_est) if total_est - d <= budget), len(ends) - 1)
    fit = fit_after(ends[k])
    if fit.tokens <= budget:
        while k > 0 and (earlier := fit_after(ends[k - 1])).tokens <= budget:
            k, fit = k - 1, earlier
        return fit
    while k + 1 < len(ends):
        k += 1
        fit = fit_after(ends[k])
        if fit.tokens <= budget:
            return fit
    # Every complete block is gone and it still does not fit (a very long newest message): one
    # exchange at a time from here.
    for n in range(ends[-1] + 1, len(groups) + 1):
        fit = fit_after(n)
        if fit.tokens <= budget:
            return fit
    raise ContextOverflowError(
        f"Your message is too long for the model: it needs about {fit.tokens} tokens and only "
        f"{budget} fit with room for the answer. Shorten it, or lower the maximum answer length "
        "in Settings.",
        detail=f"prompt tokens {fit.tokens} > budget {budget}",
    )


def answer_budget(n_ctx: int, max_tokens: int) -> int:
    """Prompt tokens allowed when `max_tokens` must stay free for the answer."""
    return max(n_ctx - max(max_tokens, MIN_ANSWER_TOKENS), 1)


def fit_prompt(
    messages: Sequence[Message], count_tokens: CountTokens, n_ctx: int, max_tokens: int,
    forget_oldest: bool = True, size: MessageSize | None = None,
) -> tuple[Fit, int]:
    """Fit the history with `max_tokens` reserved for the answer; if even the newest message
    does not fit with that reserve, accept a shorter answer (at least MIN_ANSWER_TOKENS) rather
    than none. Returns the fit and the number of new tokens allowed. With `forget_oldest=False`
    a history that no longer fits raises ContextOverflowError instead of leaving turns out.
    `size` places the blocks old turns leave in (see fit_messages)."""
    try:
        fit = fit_messages(messages, count_tokens, answer_budget(n_ctx, max_tokens), size)
    except ContextOverflowError:
        fit = fit_messages(messages, count_tokens, n_ctx - MIN_ANSWER_TOKENS, size)
    if fit.forgotten and not forget_oldest:
        raise ContextOverflowError(
            f"This conversation no longer fits in what the model can read at once ({n_ctx} tokens). "
            "Start a new chat, or choose to leave out the oldest messages in Settings → Chat.",
            detail=f"{len(fit.forgotten)} messages would be left out")
    return fit, max(min(max_tokens, n_ctx - fit.tokens), 1)
