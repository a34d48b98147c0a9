"""The saved-state cache on its own: keys, prefixes, checks of files on disk, memory budget, disk cap, LRU."""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from engine.state_cache import StateCache, StateKey, model_identity
from engine.state_file import StateCancelled

KEY = StateKey(model="m" * 64, build="llama-cpp-python 0.3.36", chat_format="chatml", n_ctx=2048)
IDS = list(range(1, 201))


def payload(n: int, seed: int = 0) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


def put(cache: StateCache, ids: list[int], data: bytes) -> StateCache:
    """`cache.put` and wait until the state is on disk."""
    cache.put(KEY, ids, data)
    cache.flush()
    return cache


def files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.kvstate"))


def test_a_state_written_by_one_cache_is_read_back_whole_by_the_next(tmp_path):
    put(StateCache(tmp_path), IDS, payload(5000))
    found = StateCache(tmp_path).best(KEY, [*IDS, 7, 8, 9], beyond=0)
    assert found is not None
    state, agree = found
    assert agree == len(IDS)
    assert state.payload == payload(5000) and state.ids.tolist() == IDS


@pytest.mark.parametrize("field,value", [("model", "x" * 64), ("build", "llama-cpp-python 0.4.0"),
                                         ("chat_format", "zephyr"), ("n_ctx", 4096)])
def test_a_state_saved_under_another_model_build_format_or_context_is_never_offered(tmp_path, field, value):
    put(StateCache(tmp_path), IDS, payload(100))
    other = replace(KEY, **{field: value})
    assert StateCache(tmp_path).best(other, IDS, beyond=0) is None
    assert StateCache(tmp_path).best(KEY, IDS, beyond=0) is not None


def test_only_the_part_of_a_state_that_agrees_with_the_prompt_counts(tmp_path):
    cache = StateCache(tmp_path)
    put(cache, IDS, payload(100))
    diverging = [*IDS[:40], 999, *IDS[41:]]
    assert cache.best(KEY, diverging, beyond=40) is None
    _, agree = cache.best(KEY, diverging, beyond=39)
    assert agree == 40
    assert StateCache(tmp_path).best(KEY, [999, *IDS], beyond=0) is None


def test_the_state_agreeing_longest_wins_and_a_state_it_extends_is_dropped(tmp_path):
    cache = StateCache(tmp_path)
    put(cache, IDS[:50], payload(100, 1))
    put(cache, [*IDS[:50], 5, 5, 5], payload(100, 2))  # extends the first, which is dropped
    put(cache, IDS, payload(100, 3))  # another branch from the same start
    assert len(files(tmp_path)) == 2
    state, agree = StateCache(tmp_path).best(KEY, [*IDS, 1], beyond=0)
    assert agree == len(IDS) and state.payload == payload(100, 3)
    state, agree = StateCache(tmp_path).best(KEY, [*IDS[:50], 5, 5, 5, 1], beyond=0)
    assert agree == 53 and state.payload == payload(100, 2)


def damage(path: Path, at: int, data: bytes) -> None:
    raw = bytearray(path.read_bytes())
    raw[at: at + len(data)] = data
    path.write_bytes(bytes(raw))


DAMAGES = {
    "payload byte": lambda p: damage(p, p.stat().st_size - 10, b"\x00\xff"),
    "truncated": lambda p: p.write_bytes(p.read_bytes()[:-1]),
    "grown": lambda p: p.write_bytes(p.read_bytes() + b"\x00"),
    "magic": lambda p: damage(p, 0, b"GGUF"),
    "header json": lambda p: damage(p, 14, b"}{"),
    "header length": lambda p: damage(p, 8, b"\xff\xff\xff\x7f"),
    "token id": lambda p: damage(p, p.stat().st_size - 100 - 4 * 150, b"\x07"),
    "empty": lambda p: p.write_bytes(b""),
}


@pytest.mark.parametrize("how", list(DAMAGES))
def test_a_damaged_file_is_never_returned_and_is_logged_and_deleted(tmp_path, caplog, how):
    put(StateCache(tmp_path), IDS, payload(100))
    (path,) = files(tmp_path)
    DAMAGES[how](path)
    with caplog.at_level(logging.WARNING, logger="engine.state_cache"):
        assert StateCache(tmp_path).best(KEY, IDS, beyond=0) is None
    assert "damaged conversation state" in caplog.text
    assert not path.exists()


def test_a_damaged_file_gives_way_to_the_next_best_state(tmp_path):
    put(StateCache(tmp_path), [*IDS[:100], 3, 3], payload(100, 1))
    (shorter,) = files(tmp_path)
    put(StateCache(tmp_path), IDS, payload(100, 2))
    (longer,) = set(files(tmp_path)) - {shorter}
    DAMAGES["payload byte"](longer)
    state, agree = StateCache(tmp_path).best(KEY, IDS, beyond=0)
    assert agree == 100 and state.payload == payload(100, 1)


def test_memory_stays_within_its_budget_and_drops_the_least_recently_used(tmp_path):
    cache = StateCache(None, memory_budget=3500)
    for i in range(4):
        put(cache, [100 + i, *IDS], payload(1000, i))
        assert cache.memory_bytes <= 3500
    assert cache.best(KEY, [100, *IDS], beyond=0) is None  # the oldest went
    cache.best(KEY, [101, *IDS], beyond=0)  # used: now the most recent
    put(cache, [104, *IDS], payload(1000, 4))
    assert cache.best(KEY, [101, *IDS], beyond=0) is not None
    assert cache.best(KEY, [102, *IDS], beyond=0) is None
    assert cache.memory_bytes <= 3500


def test_a_state_larger_than_the_memory_budget_is_kept_on_disk_only(tmp_path):
    cache = StateCache(tmp_path, memory_budget=100)
    put(cache, IDS, payload(1000))
    assert cache.memory_bytes == 0
    assert cache.best(KEY, IDS, beyond=0)[0].payload == payload(1000)


def test_the_folder_never_exceeds_its_cap_and_evicts_the_least_recently_used(tmp_path):
    cap = 3 * 2000 + 2500
    for i in range(3):
        put(StateCache(tmp_path, disk_cap=cap), [100 + i, *IDS], payload(1000, i))
    for path in files(tmp_path):
        os.utime(path, ns=(10**18, 10**18 + files(tmp_path).index(path)))  # a clock nothing else moves
    assert StateCache(tmp_path).best(KEY, [100, *IDS], beyond=0) is not None  # used now: the newest
    for i in range(3, 6):
        cache = StateCache(tmp_path, disk_cap=cap)
        put(cache, [100 + i, *IDS], payload(1000, i))
        assert cache.size() <= cap
    kept = {i for i in range(6) if StateCache(tmp_path).best(KEY, [100 + i, *IDS], beyond=0)}
    assert len(kept) == 3 and 5 in kept


def test_a_state_larger_than_the_cap_is_not_written(tmp_path):
    cache = StateCache(tmp_path, disk_cap=500)
    put(cache, IDS, payload(1000))
    assert files(tmp_path) == [] and cache.size() == 0


def test_a_lower_cap_takes_effect_at_once_keeping_the_most_recently_used(tmp_path):
    cache = StateCache(tmp_path)
    for i in range(4):
        before = set(files(tmp_path))
        put(cache, [100 + i, *IDS], payload(1000, i))
        (new,) = set(files(tmp_path)) - before
        os.utime(new, ns=(10**18 + i, 10**18 + i))  # used in this order, on a clock nothing else moves
    one = files(tmp_path)[0].stat().st_size
    cache.set_disk_cap(2 * one)
    assert cache.size() <= 2 * one and len(files(tmp_path)) == 2
    kept = {i for i in range(4) if StateCache(tmp_path).best(KEY, [100 + i, *IDS], beyond=0)}
    assert kept == {2, 3}
    put(cache, [200, *IDS], payload(1000, 9))
    assert cache.size() <= 2 * one  # later writes keep to the new cap too
    cache.set_disk_cap(0)
    assert files(tmp_path) == []


def test_writes_leave_no_temporary_files_and_a_dead_writes_leftover_is_counted_then_cleaned(tmp_path):
    cache = StateCache(tmp_path)
    put(cache, IDS, payload(100))
    assert [p.name for p in tmp_path.iterdir()] == [files(tmp_path)[0].name]
    leftover = tmp_path / ".dead.123.tmp"
    leftover.write_bytes(b"x" * 50)
    os.utime(leftover, (1, 1))
    assert cache.size() == files(tmp_path)[0].stat().st_size + 50
    put(cache, [5, *IDS], payload(100))
    assert not leftover.exists()


def test_clear_empties_memory_and_folder(tmp_path):
    cache = StateCache(tmp_path)
    put(cache, IDS, payload(100))
    assert cache.size() > 0 and cache.memory_bytes > 0
    cache.clear()
    assert cache.size() == 0 and cache.memory_bytes == 0
    assert cache.best(KEY, IDS, beyond=0) is None


def test_an_unwritable_folder_costs_the_saved_state_not_an_exception(tmp_path, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    cache = StateCache(blocker / "states")
    with caplog.at_level(logging.WARNING, logger="engine.state_cache"):
        put(cache, IDS, payload(100))
    assert "could not save" in caplog.text
    assert cache.best(KEY, IDS, beyond=0) is not None  # still in memory


def test_reading_a_file_stops_when_the_request_is_cancelled(tmp_path):
    put(StateCache(tmp_path), IDS, payload(100))
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(StateCancelled):
        StateCache(tmp_path).best(KEY, IDS, beyond=0, cancel=cancel)
    assert StateCache(tmp_path).best(KEY, IDS, beyond=0) is not None  # the file is intact


def test_a_model_file_changed_in_place_gets_another_identity(tmp_path):
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF" + b"\x00" * 100)
    before = model_identity(model)
    assert model_identity(model) == before
    model.write_bytes(b"GGUF" + b"\x01" * 100)
    assert model_identity(model) != before
