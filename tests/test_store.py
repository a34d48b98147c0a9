"""Conversations and their message trees, on real SQLite files."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.core.settings import Sampling
from app.core.store import Store, StoreError
from app.core.store_file import open_database
from app.core.store_types import DEFAULT_TITLE


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s, notice = Store.open(tmp_path / "chats.db")
    assert notice is None
    yield s
    s.close()


def _chat(store: Store, *turns: str) -> tuple[str, list[str]]:
    """A conversation with alternating user/assistant turns; returns its id and the message ids."""
    conv = store.create_conversation()
    ids: list[str] = []
    parent = None
    for i, text in enumerate(turns):
        parent = store.add_message(conv.id, parent, "user" if i % 2 == 0 else "assistant", text).id
        ids.append(parent)
    return conv.id, ids


def test_database_uses_wal_full_sync_and_foreign_keys(tmp_path: Path) -> None:
    store, _ = Store.open(tmp_path / "chats.db")
    store.close()
    conn = sqlite3.connect(tmp_path / "chats.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"  # persistent in the file
    conn.close()
    # synchronous, foreign_keys and busy_timeout are per connection: ask one opened the way Store.open does.
    conn = open_database(tmp_path / "chats.db").conn
    pragma = lambda name: conn.execute(f"PRAGMA {name}").fetchone()[0]  # noqa: E731
    assert (pragma("synchronous"), pragma("foreign_keys"), pragma("busy_timeout")) == (2, 1, 5000)
    store = Store(conn, tmp_path / "chats.db")
    conv = store.create_conversation()
    with pytest.raises(StoreError):
        store.add_message(conv.id, "0" * 32, "user", "answering nothing")
    store.close()


def test_new_conversation_has_defaults_and_every_field_round_trips(store: Store) -> None:
    conv = store.create_conversation()
    assert conv.title == DEFAULT_TITLE and not conv.pinned and conv.trashed_at is None
    assert len(conv.id) == 32 and int(conv.id, 16) >= 0
    sampling = Sampling(temperature=0.1, seed=3)
    updated = store.update_conversation(conv.id, title="Cooking", pinned=True, model_id="tinyllama",
                                        quant="Q5_K_M", chat_format="chatml", system_prompt="Be brief.",
                                        sampling=sampling)
    again = Store.open(store.path)[0].get_conversation(conv.id)
    assert again == updated
    assert (again.title, again.pinned, again.model_id, again.quant, again.chat_format, again.system_prompt,
            again.sampling) == ("Cooking", True, "tinyllama", "Q5_K_M", "chatml", "Be brief.", sampling)


def test_list_shows_pinned_first_then_most_recently_active(store: Store) -> None:
    a, _ = _chat(store, "first")
    b, _ = _chat(store, "second")
    c, _ = _chat(store, "third")
    store.add_message(a, store.get_conversation(a).current_leaf_id, "assistant", "a is now the newest")
    store.set_pinned(b, True)
    assert [conv.id for conv in store.list_conversations()] == [b, a, c]


def test_trash_hides_restore_brings_back_and_purge_deletes_for_good(store: Store) -> None:
    keep, _ = _chat(store, "keep me")
    gone, _ = _chat(store, "trash me")
    store.trash_conversation(gone)
    assert [c.id for c in store.list_conversations()] == [keep]
    assert {c.id for c in store.list_conversations(include_trashed=True)} == {keep, gone}
    store.restore_conversation(gone)
    assert {c.id for c in store.list_conversations()} == {keep, gone}
    store.trash_conversation(gone)
    assert store.purge_trash() == 1
    with pytest.raises(StoreError):
        store.get_conversation(gone)
    assert store.active_branch(keep)[0].content == "keep me"


def test_delete_conversation_removes_its_messages(store: Store) -> None:
    cid, ids = _chat(store, "q", "a", "q2")
    store.delete_conversation(cid)
    for mid in ids:
        with pytest.raises(StoreError):
            store.get_message(mid)
    assert store.list_conversations() == []


def test_rename_collapses_whitespace_and_empty_name_falls_back(store: Store) -> None:
    cid, _ = _chat(store, "hi")
    assert store.rename(cid, "  Trip   to\nParis ").title == "Trip to Paris"
    assert store.rename(cid, "   ").title == DEFAULT_TITLE


def test_auto_title_uses_the_first_user_message_and_never_overrides_a_user_title(store: Store) -> None:
    cid, _ = _chat(store, "How do I   make\nfresh pasta dough at home without a machine, step by step?", "ok")
    title = store.auto_title(cid)
    assert title.startswith("How do I make fresh pasta dough") and title.endswith("…")
    assert len(title) <= 49
    store.rename(cid, "Pasta")
    assert store.auto_title(cid) == "Pasta"
    short, _ = _chat(store, "Hi")
    assert store.auto_title(short) == "Hi"


def test_message_keeps_role_content_model_stats_status_and_token_ids(store: Store) -> None:
    cid, (q,) = _chat(store, "question")
    ids = (1, 32001, 2**31 - 1, 0, 17)
    a = store.add_message(cid, q, "assistant", "answer é世🎉", status="error", model_id="tinyllama",
                          quant="Q4_K_M", chat_format="chatml", prompt_tokens=12, completion_tokens=5,
                          reused_tokens=3, ttft_s=0.25, tokens_per_s=31.5, error="Out of memory.",
                          token_ids=ids)
    again = Store.open(store.path)[0].get_message(a.id)
    assert again == a
    assert (again.role, again.content, again.status, again.token_ids, again.prompt_tokens, again.error) == (
        "assistant", "answer é世🎉", "error", ids, 12, "Out of memory.")
    assert again.parent_id == q and again.conversation_id == cid


def test_adding_a_message_makes_it_the_current_leaf_and_the_active_branch_follows(store: Store) -> None:
    cid, ids = _chat(store, "q1", "a1", "q2", "a2")
    assert store.get_conversation(cid).current_leaf_id == ids[-1]
    assert [m.content for m in store.active_branch(cid)] == ["q1", "a1", "q2", "a2"]


def test_regenerate_creates_a_sibling_and_siblings_report_their_index(store: Store) -> None:
    cid, (q, a1) = _chat(store, "q", "first answer")
    a2 = store.add_message(cid, q, "assistant", "second answer").id
    a3 = store.add_message(cid, q, "assistant", "third answer").id
    found, index = store.siblings(a2)
    assert [m.id for m in found] == [a1, a2, a3] and index == 1
    assert store.siblings(a3)[1] == 2
    assert [m.content for m in store.active_branch(cid)] == ["q", "third answer"]


def test_editing_the_first_message_creates_a_root_sibling(store: Store) -> None:
    cid, (q1, _a1) = _chat(store, "original", "reply")
    edited = store.add_message(cid, None, "user", "edited").id
    found, index = store.siblings(edited)
    assert [m.id for m in found] == [q1, edited] and index == 1
    assert [m.content for m in store.active_branch(cid)] == ["edited"]


def test_switch_branch_follows_the_newest_child_down_to_a_leaf(store: Store) -> None:
    cid, (q, a1, q2, a2) = _chat(store, "q", "a1", "q2", "a2")
    store.add_message(cid, q2, "assistant", "a2 again")
    b = store.add_message(cid, q, "assistant", "other answer").id
    store.add_message(cid, b, "user", "follow-up on other")
    branch = store.switch_branch(a1)
    assert [m.content for m in branch] == ["q", "a1", "q2", "a2 again"]
    assert store.get_conversation(cid).current_leaf_id == branch[-1].id
    assert [m.content for m in store.switch_branch(b)] == ["q", "other answer", "follow-up on other"]
    assert [m.content for m in store.switch_branch(a2)] == ["q", "a1", "q2", "a2"]


def test_deleting_a_message_removes_its_subtree_and_shows_the_newest_remaining_branch(store: Store) -> None:
    cid, (q, a1, q2, a2) = _chat(store, "q", "a1", "q2", "a2")
    b = store.add_message(cid, q, "assistant", "b").id
    store.add_message(cid, b, "user", "under b")
    store.switch_branch(a1)
    store.delete_message(a1)
    for gone in (a1, q2, a2):
        with pytest.raises(StoreError):
            store.get_message(gone)
    assert [m.content for m in store.active_branch(cid)] == ["q", "b", "under b"]
    store.delete_message(q)
    assert store.active_branch(cid) == []
    assert store.get_conversation(cid).current_leaf_id is None


def test_deleting_a_message_off_the_shown_branch_keeps_the_branch(store: Store) -> None:
    cid, (q, a1) = _chat(store, "q", "a1")
    b = store.add_message(cid, q, "assistant", "b").id
    store.switch_branch(a1)
    store.delete_message(b)
    assert [m.content for m in store.active_branch(cid)] == ["q", "a1"]


def test_a_message_cannot_answer_a_message_of_another_conversation(store: Store) -> None:
    _, (q,) = _chat(store, "q")
    other = store.create_conversation()
    with pytest.raises(StoreError):
        store.add_message(other.id, q, "assistant", "misplaced")
    assert store.active_branch(other.id) == []


def test_update_message_rewrites_content_status_and_stats_in_place(store: Store) -> None:
    cid, (q,) = _chat(store, "q")
    a = store.add_message(cid, q, "assistant", "", status="partial")
    store.update_message(a.id, content="Hel")
    store.update_message(a.id, content="Hello", status="complete", completion_tokens=2, token_ids=[5, 6])
    got = store.get_message(a.id)
    assert (got.content, got.status, got.completion_tokens, got.token_ids) == ("Hello", "complete", 2, (5, 6))
    assert [m.id for m in store.messages(cid)] == [q, a.id]


def test_a_long_linear_conversation_loads_and_deletes(store: Store) -> None:
    cid, _ = _chat(store, *(f"turn {i}" for i in range(1500)))
    assert len(store.active_branch(cid)) == 1500
    store.delete_conversation(cid)
    assert store.search("turn") == []
