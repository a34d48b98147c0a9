"""The sidebar's model: a change to one conversation touches its one row (repainted, or moved with its
heading coming or going), never the whole list; filtering keeps the date headings of what matches."""

from __future__ import annotations

import random
import time
from dataclasses import replace
from pathlib import Path

import pytest

from app.chat.conversation_model import GENERATING_MARK, ConversationModel
from app.core.store import Store
from app.core.store_types import Conversation

DAY = 86_400.0


class Recorder:
    """Every change signal the model sends, in order, with its rows."""

    def __init__(self, model: ConversationModel) -> None:
        self.events: list[tuple] = []
        model.modelReset.connect(lambda: self.events.append(("reset",)))
        model.dataChanged.connect(lambda a, b, _roles=(): self.events.append(("changed", a.row(), b.row())))
        model.rowsInserted.connect(lambda _p, a, b: self.events.append(("inserted", a, b)))
        model.rowsRemoved.connect(lambda _p, a, b: self.events.append(("removed", a, b)))
        model.rowsMoved.connect(lambda _p, a, b, _d, dest: self.events.append(("moved", a, dest)))


def rows(model: ConversationModel) -> list[str]:
    return [model.index(i).data() for i in range(model.rowCount())]


@pytest.fixture
def store(tmp_path: Path):
    s, _ = Store.open(tmp_path / "chats.db")
    yield s
    s.close()


def chat(store: Store, title: str, days_ago: float = 0.0, pinned: bool = False) -> Conversation:
    conv = store.create_conversation(title=title, pinned=pinned)
    store.add_message(conv.id, None, "user", f"about {title}")
    return replace(store.get_conversation(conv.id), updated_at=time.time() - days_ago * DAY)


def answered(store: Store, conv: Conversation) -> Conversation:
    """The conversation as the store holds it after one more answer."""
    leaf = store.active_branch(conv.id)[-1]
    store.add_message(conv.id, leaf.id, "assistant", "an answer")
    return store.get_conversation(conv.id)


def test_an_answer_in_the_newest_conversation_repaints_its_row_only(qtbot, store: Store) -> None:
    newest, older = chat(store, "Newest"), chat(store, "Older", days_ago=3)
    model = ConversationModel()
    model.set_conversations([newest, older])
    seen = Recorder(model)
    model.put(answered(store, newest))
    assert seen.events == [("changed", 1, 1)]
    assert rows(model) == ["Today", "Newest", "Previous 7 days", "Older"]


def test_an_answer_in_an_old_conversation_moves_its_row_and_its_empty_heading_goes(qtbot, store: Store) -> None:
    today, old, oldest = chat(store, "Today's"), chat(store, "Last week's", 3), chat(store, "Last month's", 40)
    model = ConversationModel()
    model.set_conversations([today, old, oldest])
    seen = Recorder(model)
    model.put(answered(store, old))
    assert ("reset",) not in seen.events
    assert seen.events == [("removed", 2, 2), ("moved", 2, 1), ("changed", 1, 1)]
    assert rows(model) == ["Today", "Last week's", "Today's", "Older", "Last month's"]


def test_pinning_moves_the_row_under_a_new_pinned_heading(qtbot, store: Store) -> None:
    a, b = chat(store, "Alpha"), chat(store, "Bravo", 1)
    model = ConversationModel()
    model.set_conversations([a, b])
    seen = Recorder(model)
    model.put(store.set_pinned(b.id, True))
    assert [e[0] for e in seen.events] == ["removed", "moved", "inserted", "changed"]
    assert rows(model) == ["Pinned", "Bravo", "Today", "Alpha"]


def test_a_trashed_conversation_leaves_with_its_heading_and_undo_brings_both_back(qtbot, store: Store) -> None:
    a, b = chat(store, "Alpha"), chat(store, "Bravo", 1)
    model = ConversationModel()
    model.set_conversations([a, b])
    seen = Recorder(model)
    model.remove(b.id)
    assert rows(model) == ["Today", "Alpha"] and ("reset",) not in seen.events
    model.put(b)
    assert rows(model) == ["Today", "Alpha", "Yesterday", "Bravo"] and ("reset",) not in seen.events


def test_the_filter_shows_matching_titles_under_their_own_headings(qtbot, store: Store) -> None:
    convs = [chat(store, "Soup recipe"), chat(store, "Tax forms", 1), chat(store, "Bread RECIPE", 10)]
    model = ConversationModel()
    model.set_conversations(convs)
    model.set_filter("recipe")
    assert rows(model) == ["Today", "Soup recipe", "Previous 30 days", "Bread RECIPE"]
    model.put(answered(store, convs[2]))  # an answer while filtered moves the row among the matches
    assert rows(model) == ["Today", "Bread RECIPE", "Soup recipe"]
    model.set_filter("")
    assert rows(model) == ["Today", "Bread RECIPE", "Soup recipe", "Yesterday", "Tax forms"]


def test_the_generating_mark_repaints_the_row_it_leaves_and_the_row_it_marks(qtbot, store: Store) -> None:
    a, b = chat(store, "Alpha"), chat(store, "Bravo")
    model = ConversationModel()
    model.set_conversations([a, b])
    model.set_generating(a.id)
    seen = Recorder(model)
    model.set_generating(b.id)
    assert sorted(seen.events) == [("changed", 1, 1), ("changed", 2, 2)]
    assert rows(model)[1:] == ["Alpha", GENERATING_MARK + "Bravo"]


def test_any_sequence_of_changes_leaves_the_rows_a_fresh_listing_would_show(qtbot, store: Store) -> None:
    rng = random.Random(7)
    convs = {c.id: c for c in (chat(store, f"chat {i}", rng.choice([0, 1, 3, 12, 90]), rng.random() < 0.2)
                               for i in range(30))}
    model = ConversationModel()
    model.set_conversations(sorted(convs.values(), key=lambda c: (not c.pinned, -c.updated_at)))
    seen = Recorder(model)
    gone: dict[str, Conversation] = {}
    for step in range(200):
        cid = rng.choice(list(convs) + list(gone))
        if cid in gone:
            convs[cid] = gone.pop(cid)
            model.put(convs[cid])
        elif rng.random() < 0.15:
            gone[cid] = convs.pop(cid)
            model.remove(cid)
        else:
            convs[cid] = replace(convs[cid], updated_at=time.time() - rng.choice([0, 0.5, 2, 20]) * DAY,
                                 pinned=rng.random() < 0.2, title=f"chat {cid[:4]} {step}")
            model.put(convs[cid])
        fresh = ConversationModel()
        fresh.set_conversations(sorted(convs.values(), key=lambda c: (not c.pinned, -c.updated_at)))
        assert rows(model) == rows(fresh), step
    assert ("reset",) not in seen.events


def test_answers_in_the_window_move_the_sidebar_row_without_listing_again(qtbot, tmp_path: Path, monkeypatch) -> None:
    from tests.gui_support import click_chat, close_window, open_window, scripted_model, send

    monkeypatch.setenv("TINYCHAT_HOME", str(tmp_path))
    window = open_window(qtbot, tmp_path, scripted_model())
    try:
        send(qtbot, window, "First chat")
        first = window.session.open_id
        window.new_chat()
        send(qtbot, window, "Second chat")
        seen = Recorder(window.sidebar.model)
        click_chat(qtbot, window, first)
        send(qtbot, window, "One more question")
        assert ("reset",) not in seen.events and ("moved", 2, 1) in seen.events
        assert window.sidebar.titles() == ["First chat", "Second chat"]
        assert window.sidebar.current_id() == first
    finally:
        close_window(window)
