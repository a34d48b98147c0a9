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


def estimated_tokens(m: Message) -> int:
    """A message's size in tokens as block boundaries count it: the ids of a stored answer, else an
    estimate from its text (Llama's vocab: about 4 ASCII characters a token, a token for every 1.5
    bytes of other scripts, which fall back to bytes more often). No tokenizer is involved, so every
    caller (an engine, the GUI's context meter) places the boundaries alike, at no cost."""
    if m.token_ids:
        return len(m.token_ids) + MESSAGE_OVERHEAD
    ascii_chars = len(m.content.encode("ascii", "ignore"))
    other_bytes = len(m.content.encode("utf-8", "replace")) - ascii_chars
    return ascii_chars // 4 + other_bytes * 2 // 3 + MESSAGE_OVERHEAD


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


def _block_ends(group_sizes: list[int], block: int) -> list[int]:
    """Numbers of leading exchanges that make up whole blocks of at least `block` tokens, greedily
    from the oldest: 0, then the end of each complete block. Each end depends only on what is before it."""
    ends, acc = [0], 0
    for g, size in enumerate(group_sizes):
        acc += size
        if acc >= block:
            ends.append(g + 1)
            acc = 0
    return ends


def _first_fitting(n: int, fits: Callable[[int], bool], guess: int) -> int | None:
    """The smallest k < n with fits(k), for fits false up to some k and true from there; starting at
    `guess` it takes two calls when the guess is right and a binary search's when it is not."""
    if fits(guess):
        if guess == 0 or not fits(guess - 1):
            return guess
        lo, hi = 0, guess - 1  # fits(hi)
    else:
        if guess + 1 >= n or not fits(n - 1):
            return None
        lo, hi = guess + 1, n - 1
    while lo < hi:
        mid = (lo + hi) // 2
        if fits(mid):
            hi = mid
        else:
            lo = mid + 1
    return hi


def fit_messages(messages: Sequence[Message], count_tokens: CountTokens, budget: int,
                 size: MessageSize = estimated_tokens) -> Fit:
    """Drop the oldest non-system messages, a block at a time, until the rendered prompt fits in
    `budget` tokens.

    Whole exchanges go (a user message and the answers after it), so the prompt never starts with an
    orphan answer. The fit is the fewest whole blocks whose removal makes the prompt fit; if removing
    every complete block is not enough, further exchanges go one at a time. `size` places the block
    boundaries; what fits is decided by `count_tokens` alone. Raises ContextOverflowError if the
    system prompt plus the newest user message alone do not fit.
    """
    groups = _exchanges(messages)
    fits_cache: dict[int, Fit] = {}

    def fit_after(n_groups: int) -> Fit:
        if n_groups not in fits_cache:
            gone = {i for group in groups[:n_groups] for i in group}
            kept = tuple(i for i in range(len(messages)) if i not in gone)
            fits_cache[n_groups] = Fit(kept, tuple(sorted(gone)),
                                       count_tokens([messages[i] for i in kept]))
        return fits_cache[n_groups]

    sizes = [sum(size(messages[i]) for i in group) for group in groups]
    ends = _block_ends(sizes, max(int(budget * BLOCK_FRACTION), 1))
    # Guess from the sizes where the prompt starts to fit; the exact counts confirm it.
    left, guess = sum(size(m) for m in messages), len(ends) - 1
    for k, n in enumerate(ends):
        if left - sum(sizes[:n]) <= budget:
            guess = k
            break
    k = _first_fitting(len(ends), lambda k: fit_after(ends[k]).tokens <= budget, guess)
    if k is not None:
        return fit_after(ends[k])
    # Every complete block is gone and it still does not fit (a very long newest message): one
    # exchange at a time from here.
    fit = fit_after(ends[-1])
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
