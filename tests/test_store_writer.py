"""The assistant answer is on disk while it streams: inserted as partial, rewritten at most every
interval, finalised with its status and stats."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from app.core.store import Store
from app.core.store_writer import StreamingWriter
from engine.types import GenerationStats


class Clock:
    """A clock the test advances by hand, so throttling is checked without sleeping."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s, _ = Store.open(tmp_path / "chats.db")
    yield s
    s.close()


def _question(store: Store) -> tuple[str, str]:
    conv = store.create_conversation()
    return conv.id, store.add_message(conv.id, None, "user", "Tell me a story").id


def test_start_inserts_an_empty_partial_answer_that_becomes_the_current_leaf(store: Store) -> None:
    cid, q = _question(store)
    writer = StreamingWriter.start(store, cid, q, model_id="tinyllama", quant="Q4_K_M", chat_format="chatml")
    msg = store.get_message(writer.message_id)
    assert (msg.role, msg.content, msg.status, msg.parent_id) == ("assistant", "", "partial", q)
    assert (msg.model_id, msg.quant, msg.chat_format) == ("tinyllama", "Q4_K_M", "chatml")
    assert store.get_conversation(cid).current_leaf_id == msg.id


def test_text_reaches_disk_at_most_once_per_interval(store: Store) -> None:
    cid, q = _question(store)
    clock = Clock()
    msg = store.add_message(cid, q, "assistant", "", status="partial")
    writer = StreamingWriter(store, msg.id, interval=0.5, clock=clock)
    writes, times = [], []
    for i in range(128):  # 128 tokens over 2 seconds (1/64 s steps add up exactly)
        clock.now += 1 / 64
        if writer.append(f"t{i} "):
            writes.append(store.get_message(msg.id).content)
            times.append(clock.now - 100.0)
    assert times == [0.5, 1.0, 1.5, 2.0]
    assert all(writer.text.startswith(w) for w in writes) and writes == sorted(writes, key=len)
    assert writes[-1] == writer.text == writer.flushed_text
    stored = store.get_message(msg.id)
    assert stored.status == "partial" and stored.content == writer.flushed_text


def test_flush_without_new_text_writes_nothing(store: Store) -> None:
    cid, q = _question(store)
    writer = StreamingWriter.start(store, cid, q, interval=0.0)
    assert writer.append("once") is True
    assert writer.flush() is False
    assert writer.append("") is False


def test_finish_writes_all_text_status_and_generation_stats(store: Store) -> None:
    cid, q = _question(store)
    writer = StreamingWriter.start(store, cid, q, interval=10.0)
    writer.append("Once upon ")
    writer.append("a time.")
    assert store.get_message(writer.message_id).content == ""  # interval not reached yet
    stats = GenerationStats(prompt_tokens=20, reused_tokens=15, completion_tokens=4, ttft_s=0.12,
                            tokens_per_s=40.0, prompt_tokens_per_s=300.0, total_s=0.3,
                            token_ids=(7, 8, 9, 10))
    final = writer.finish("complete", stats)
    assert (final.content, final.status) == ("Once upon a time.", "complete")
    assert (final.prompt_tokens, final.reused_tokens, final.completion_tokens) == (20, 15, 4)
    assert (final.ttft_s, final.tokens_per_s, final.token_ids) == (0.12, 40.0, (7, 8, 9, 10))
    assert store.get_message(final.id) == final


def test_a_stopped_answer_is_kept_as_partial_and_a_failed_one_with_its_error(store: Store) -> None:
    cid, q = _question(store)
    stopped = StreamingWriter.start(store, cid, q)
    stopped.append("Half an ans")
    assert stopped.finish("partial").content == "Half an ans"
    failed = StreamingWriter.start(store, cid, q)
    msg = failed.finish("error", error="The model ran out of memory.")
    assert (msg.status, msg.error, msg.content) == ("error", "The model ran out of memory.", "")
    assert len(store.siblings(msg.id)[0]) == 2
