"""Context fitting: what stays in the 2048-token window and what is "forgotten"."""

import itertools

import pytest

from engine.context import MIN_ANSWER_TOKENS, estimated_tokens, fit_messages, fit_prompt
from engine.types import ContextOverflowError, Message


def words(messages):
    """A stand-in tokenizer for these tests: one token per word, 3 per message of overhead."""
    return sum(len(m.content.split()) + 3 for m in messages)


def text(n):
    """n words of three letters: the estimate that places block boundaries (4 characters a token,
    4 tokens of template) then equals `words`."""
    return " ".join(["www"] * n)


def convo(*sizes):
    roles = ["user", "assistant"]
    return [Message(roles[i % 2], text(n)) for i, n in enumerate(sizes)]


def test_everything_is_kept_when_it_fits():
    msgs = convo(5, 5, 5)
    fit = fit_messages(msgs, words, 100)
    assert fit.kept == (0, 1, 2) and fit.forgotten == () and fit.tokens == 24


def test_oldest_exchange_goes_first_and_is_reported_forgotten():
    msgs = convo(50, 50, 10, 10, 10)
    fit = fit_messages(msgs, words, 50)
    assert fit.forgotten == (0, 1)
    assert fit.kept == (2, 3, 4)


def test_system_prompt_and_newest_user_message_are_never_dropped():
    msgs = [Message("system", "be brief"), *convo(40, 40, 40, 40, 5)]
    fit = fit_messages(msgs, words, 20)
    assert fit.kept == (0, 5)
    assert fit.forgotten == (1, 2, 3, 4)


def test_prompt_never_starts_with_an_orphan_answer():
    msgs = convo(10, 30, 10)
    fit = fit_messages(msgs, words, 20)
    assert msgs[fit.kept[0]].role == "user"


def test_a_message_too_long_on_its_own_raises_a_plain_overflow_error():
    with pytest.raises(ContextOverflowError) as e:
        fit_messages(convo(500), words, 100)
    assert "too long" in e.value.message


def test_long_message_gets_a_shorter_answer_rather_than_none():
    fit, max_new = fit_prompt(convo(1700), words, 2048, 512)
    assert fit.tokens == 1703
    assert MIN_ANSWER_TOKENS <= max_new == 2048 - 1703


def test_answer_length_is_capped_by_what_is_left_of_the_context():
    _, max_new = fit_prompt(convo(10), words, 2048, 512)
    assert max_new == 512


def growing_chat(turns, budget, system=True):
    """The fit of every turn of a chat that grows by one exchange per turn (user 10 words, answer 20)."""
    msgs = [Message("system", "be brief")] if system else []
    fits = []
    for _ in range(turns):
        msgs.append(Message("user", text(10)))
        fits.append((list(msgs), fit_messages(msgs, words, budget)))
        msgs.append(Message("assistant", text(20)))
    return fits


def test_a_growing_chat_forgets_the_same_messages_until_a_whole_block_goes():
    fits = growing_chat(60, budget=200)
    drops = 0
    for (_, before), (_, after) in itertools.pairwise(fits):
        assert after.forgotten[: len(before.forgotten)] == before.forgotten  # never remembered again
        if after.forgotten == before.forgotten:
            # The prompt only grows at its end: everything evaluated for the last turn is reused.
            assert after.kept[: len(before.kept)] == before.kept
        else:
            drops += 1
            assert len(after.forgotten) - len(before.forgotten) >= 2 * (100 // 36)  # a block, not one exchange
    assert all(f.tokens <= 200 for _, f in fits)
    assert 0 < drops <= 60 * 36 // 100 + 1


def test_after_a_block_goes_about_half_the_budget_is_kept():
    fits = growing_chat(40, budget=200)
    firsts = [f for (_, p), (_, f) in itertools.pairwise(fits) if f.forgotten != p.forgotten]
    assert firsts and all(100 - 36 <= f.tokens <= 100 + 2 * 36 for f in firsts)


def test_a_long_history_is_fitted_with_a_few_exact_counts():
    calls = []

    def counted(messages):
        calls.append(len(messages))
        return words(messages)

    msgs, _ = growing_chat(400, budget=2000)[-1]
    fit = fit_messages(msgs, counted, 2000)
    assert fit.forgotten and fit.tokens <= 2000
    assert len(calls) <= 3


def test_when_whole_blocks_are_not_enough_exchanges_go_one_at_a_time():
    msgs = [*convo(*[5] * 14), Message("user", text(70))]
    fit = fit_messages(msgs, words, 100)
    # Exchanges of 16 tokens, blocks of at least 50: the first four exchanges (64). Dropping them
    # leaves 3 × 16 + 73 = 121; two more exchanges must go (89), and no more.
    assert fit.forgotten == tuple(range(12)) and fit.tokens == 89


def test_block_sizes_count_a_stored_answer_by_its_ids_and_other_text_by_an_estimate():
    assert estimated_tokens(Message("assistant", "any text at all", token_ids=tuple(range(50)))) == 50 + 4
    assert estimated_tokens(Message("user", "abcd" * 100)) == 100 + 4
    assert estimated_tokens(Message("user", "世" * 100)) == 200 + 4  # 300 bytes: CJK often falls back to bytes
