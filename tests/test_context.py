"""Context fitting: what stays in the 2048-token window and what is "forgotten"."""

import pytest

from engine.context import MIN_ANSWER_TOKENS, fit_messages, fit_prompt
from engine.types import ContextOverflowError, Message


def words(messages):
    """A stand-in tokenizer for these tests: one token per word, 3 per message of overhead."""
    return sum(len(m.content.split()) + 3 for m in messages)


def convo(*sizes):
    roles = ["user", "assistant"]
    return [Message(roles[i % 2], " ".join(["w"] * n)) for i, n in enumerate(sizes)]


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
