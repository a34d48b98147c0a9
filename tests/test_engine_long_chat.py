"""The Engine contract for a conversation that outgrows the context, on every backend (tests/engine_backends.py):
old turns leave in blocks and the turns in between reuse the whole cache; every answer is what a cold engine
computes on the kept text alone, so "forgotten" is exactly what the model did not see; cancelling the turn
that drops old turns leaves the cache usable."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import pytest

from engine.context import fit_prompt
from engine.types import Chunk, GenerationParams, LoadOptions, Message
from tests.engine_backends import BACKENDS, BackendCase
from tests.test_engine_contract import run, text_of

N_CTX = 512
TURNS = 20  # about 46 tokens a turn: full after 9 or 10 turns, then a block of 5 or 6 goes at a time
PARAMS = GenerationParams(temperature=0.0, max_tokens=16, repeat_penalty=1.0)


@dataclass(frozen=True)
class Turn:
    convo: list[Message]  # the request: the history and the new question
    text: str
    last: Chunk


@pytest.fixture(scope="module", params=BACKENDS, ids=[b.name for b in BACKENDS])
def backend(request) -> BackendCase:
    return request.param


def loaded(backend: BackendCase):
    engine = backend.make_engine()
    engine.load(backend.random_model(), LoadOptions(n_ctx=N_CTX))
    return engine


@pytest.fixture(scope="module")
def long_chat(backend) -> list[Turn]:
    """One engine answering TURNS questions in one conversation, each answer kept with its ids."""
    engine = loaded(backend)
    convo = [Message("system", "You are a helpful assistant.")]
    turns = []
    try:
        for i in range(TURNS):
            question = f"question {i}: how can you help with the code in python? what is the story?"
            convo = [*convo, Message("user", question)]
            chunks, last = run(engine, convo, PARAMS)
            assert last.finish_reason in ("stop", "length")
            turns.append(Turn(convo, text_of(chunks), last))
            convo = [*convo, Message("assistant", text_of(chunks), token_ids=last.stats.token_ids)]
    finally:
        engine.unload()
    return turns


def drop_turns(turns: list[Turn]) -> list[int]:
    """The turns on which more messages were left out than on the turn before."""
    return [i for i in range(1, len(turns)) if turns[i].last.stats.forgotten != turns[i - 1].last.stats.forgotten]


def test_a_chat_that_outgrows_the_context_reuses_the_cache_between_block_drops(long_chat):
    drops = drop_turns(long_chat)
    assert len(drops) >= 2
    for i in range(1, TURNS):
        p, c = long_chat[i - 1].last.stats, long_chat[i].last.stats
        assert c.prompt_tokens <= N_CTX - 64
        if i in drops:  # a block of old turns goes: several exchanges at once, never one
            assert set(p.forgotten) < set(c.forgotten) and len(c.forgotten) - len(p.forgotten) >= 4
        else:  # everything the last turn evaluated and generated is reused
            assert c.reused_tokens >= p.prompt_tokens + p.completion_tokens - 1
    full = range(drops[0], TURNS)
    assert len(full) >= 3 * len(drops)  # most turns of a full context read only their new tokens


def test_every_answer_equals_a_cold_evaluation_of_the_kept_text(backend, long_chat):
    first = drop_turns(long_chat)[0]
    for turn in long_chat[first:]:
        s = turn.last.stats
        gone = set(s.forgotten)
        kept = [m for i, m in enumerate(turn.convo) if i not in gone]
        cold = loaded(backend)
        try:
            chunks, alone = run(cold, kept, PARAMS)
            # Fresh cache, nothing left out: the model saw only the kept text, and answered the same.
            assert alone.stats.reused_tokens == 0 and alone.stats.forgotten == ()
            assert alone.stats.prompt_tokens == s.prompt_tokens
            assert alone.stats.token_ids == s.token_ids and text_of(chunks) == turn.text
            # Any engine leaves out the same messages of the same conversation, whatever its cache holds,
            # and so does the fit the GUI's context meter computes with the engine's count.
            _, whole = run(cold, turn.convo, PARAMS)
            assert whole.stats.forgotten == s.forgotten and whole.stats.token_ids == s.token_ids
            meter, _ = fit_prompt(turn.convo, cold.count_tokens, N_CTX, PARAMS.max_tokens)
            assert meter.forgotten == s.forgotten and meter.tokens == s.prompt_tokens
        finally:
            cold.unload()


def test_cancelling_the_turn_that_drops_old_turns_leaves_the_cache_usable(backend, long_chat):
    d = drop_turns(long_chat)[0]
    engine = loaded(backend)
    try:
        run(engine, long_chat[d - 1].convo, PARAMS)  # the cache holds the conversation before the drop
        cancel = threading.Event()
        cancel.set()  # cancelled while the kept text is being read again
        chunks, stopped = run(engine, long_chat[d].convo, PARAMS, cancel)
        assert stopped.finish_reason == "cancelled" and text_of(chunks) == ""
        assert stopped.stats.completion_tokens == 0
        _, redo = run(engine, long_chat[d].convo, PARAMS)
        assert redo.stats.token_ids == long_chat[d].last.stats.token_ids
        assert redo.stats.forgotten == long_chat[d].last.stats.forgotten
        _, after = run(engine, long_chat[d + 1].convo, PARAMS)
        assert after.stats.token_ids == long_chat[d + 1].last.stats.token_ids
        assert after.stats.reused_tokens >= redo.stats.prompt_tokens + redo.stats.completion_tokens - 1
    finally:
        engine.unload()
