"""The answer loop every backend shares: what the user sees of sampled tokens, and how an answer ends.

Backends are proven end to end by the contract suite; here the loop gets plain token lists and a
word table, so each ending can be caused exactly."""

from __future__ import annotations

import threading
import time
from collections.abc import Generator, Iterable

from engine.answer_stream import FAILED, refused, stream_answer
from engine.stats import PromptStats
from engine.types import Chunk, ContextOverflowError

WORDS = {1: " ", 2: " Hello", 3: " world", 4: "!", 5: "\n", 6: "Us", 7: "er:", 8: " more"}
STOP_ID = 0


def sampled(ids: Iterable[int], fail_after: int | None = None,
            closed: list[str] | None = None) -> Generator[int, None, None]:
    """A sampling loop over `ids` that can fail, and records when it is closed."""
    try:
        for n, token in enumerate(ids):
            if n == fail_after:
                raise RuntimeError("decode failed")
            yield token
    finally:
        if closed is not None:
            closed.append("closed")


def run(ids: Iterable[int], stops: tuple[str, ...] = (), max_new: int = 100, cancel: threading.Event | None = None,
        fail_after: int | None = None, closed: list[str] | None = None) -> list[Chunk]:
    return list(stream_answer(sampled(ids, fail_after, closed), WORDS.__getitem__, stop_ids={STOP_ID},
                              stop_strings=stops, max_new=max_new, cancel=cancel or threading.Event(),
                              prompt=PromptStats(time.perf_counter(), tokens=12, reused=4, forgotten=(1, 2))))


def text_of(chunks: list[Chunk]) -> str:
    return "".join(c.text for c in chunks)


def test_the_word_start_space_before_the_first_word_is_not_shown():
    chunks = run([1, 2, 3, STOP_ID])
    assert [c.text for c in chunks[:-1]] == ["Hello", " world"]


def test_a_stop_id_ends_the_answer_and_is_not_part_of_it():
    chunks = run([2, 3, STOP_ID, 8])
    last = chunks[-1]
    assert (text_of(chunks), last.finish_reason) == ("Hello world", "stop")
    assert last.stats.token_ids == (2, 3)
    assert all(c.finish_reason is None for c in chunks[:-1])


def test_a_stop_string_split_across_tokens_is_cut_and_ends_the_answer():
    chunks = run([2, 4, 5, 6, 7, 8], stops=("\nUser:",))
    assert text_of(chunks) == "Hello!"
    assert chunks[-1].finish_reason == "stop"
    assert chunks[-1].stats.token_ids == (2, 4, 5, 6, 7)


def test_text_held_back_as_a_possible_stop_is_shown_when_the_answer_ends_otherwise():
    chunks = run([2, 4, 5, 6, STOP_ID], stops=("\nUser:",))
    assert [c.text for c in chunks] == ["Hello", "!", "\nUs"]
    assert chunks[-1].finish_reason == "stop"


def test_max_new_tokens_ends_the_answer_with_length():
    chunks = run([2, 3, 4, 8, 8], max_new=3)
    assert (text_of(chunks), chunks[-1].finish_reason) == ("Hello world!", "length")
    assert chunks[-1].stats.completion_tokens == 3


def test_cancel_ends_the_answer_before_the_next_token_is_shown():
    cancel = threading.Event()
    chunks = []
    for chunk in stream_answer(sampled([2, 3, 4, 8]), WORDS.__getitem__, stop_ids={STOP_ID}, stop_strings=(),
                               max_new=100, cancel=cancel, prompt=PromptStats(time.perf_counter())):
        chunks.append(chunk)
        cancel.set()
    assert [c.text for c in chunks] == ["Hello", ""]
    assert chunks[-1].finish_reason == "cancelled"


def test_a_failing_model_ends_the_answer_with_a_plain_error_instead_of_raising():
    chunks = run([2, 3, 4], fail_after=2)
    assert text_of(chunks) == "Hello world"
    assert (chunks[-1].finish_reason, chunks[-1].error) == ("error", FAILED)
    assert chunks[-1].stats.token_ids == (2, 3)


def test_a_failure_while_cancelling_is_a_cancel_not_an_error():
    # Backends abort a running prompt evaluation by raising once cancel is set.
    cancel = threading.Event()
    cancel.set()
    chunks = run([2, 3], cancel=cancel, fail_after=0)
    assert (chunks[-1].finish_reason, chunks[-1].error) == ("cancelled", None)


def test_the_sampling_loop_is_closed_before_the_last_chunk_arrives():
    closed: list[str] = []
    for chunk in stream_answer(sampled([2, 3, 8, 8], closed=closed), WORDS.__getitem__, stop_ids={STOP_ID},
                               stop_strings=(), max_new=2, cancel=threading.Event(),
                               prompt=PromptStats(time.perf_counter())):
        assert closed == ([] if chunk.finish_reason is None else ["closed"])
    assert closed == ["closed"]


def test_the_last_chunk_reports_the_prompt_and_the_answers_tokens():
    stats = run([2, 3, 4, STOP_ID])[-1].stats
    assert (stats.prompt_tokens, stats.reused_tokens, stats.forgotten) == (12, 4, (1, 2))
    assert (stats.completion_tokens, stats.token_ids) == (3, (2, 3, 4))
    assert 0 <= stats.ttft_s <= stats.total_s


def test_a_refused_request_is_one_error_chunk_with_the_reason():
    chunk = refused(time.perf_counter(), ContextOverflowError("Your message is too long.", detail="5000 > 1984"))
    assert (chunk.text, chunk.finish_reason, chunk.error) == ("", "error", "Your message is too long.")
    assert chunk.stats.prompt_tokens == chunk.stats.completion_tokens == 0
