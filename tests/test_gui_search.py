"""Ctrl+F in the real main window over a real SQLite store: results come with the matches highlighted,
and Enter opens the other conversation on the branch holding the message, scrolled to it."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from app.chat.search_dialog import SearchDialog
from app.chat.search_results import HTML_ROLE
from app.shell.window_actions import install
from tests.gui_support import click_chat, close_window, open_window, scripted_model


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYCHAT_HOME", str(tmp_path))
    monkeypatch.delenv("TINYCHAT_MODEL", raising=False)
    return tmp_path


@pytest.fixture
def window(qtbot, home):
    w = open_window(qtbot, home, scripted_model())
    w.actions_ = install(w)
    yield w
    close_window(w)


def fill(store):
    """A 60-message trip chat whose match is its second message, on a branch that is not the one on show
    (a later regenerate replaced it), and a recipe chat."""
    trip = store.create_conversation(title="Trip to Lisbon")
    first = store.add_message(trip.id, None, "user", "Day 0: where to start?")
    hit = store.add_message(trip.id, first.id, "assistant", "Ride the famous yellow tram 28 up the hill.")
    parent_id = hit.id
    for i in range(1, 30):
        user = store.add_message(trip.id, parent_id, "user", f"Day {i}: what next?")
        parent_id = store.add_message(trip.id, user.id, "assistant", f"Walk around quarter number {i}.").id
    store.add_message(trip.id, first.id, "assistant", "Take a taxi to the old town.")  # now on show
    recipe = store.create_conversation(title="Pastel de nata")
    q = store.add_message(recipe.id, None, "user", "How do I make custard tarts?")
    store.add_message(recipe.id, q.id, "assistant", "Bake puff pastry cups with an egg custard.")
    return trip, recipe, hit


def test_search_finds_a_message_in_another_conversation_and_opens_it_on_its_branch(qtbot, window):
    trip, recipe, hit = fill(window.store)
    window.session.refresh_conversations()
    click_chat(qtbot, window, recipe.id)
    assert hit.id not in [m.id for m in window.store.active_branch(trip.id)]

    qtbot.keyClick(window, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    dialog = window.findChild(SearchDialog)
    assert dialog is not None and dialog.isVisible()
    qtbot.keyClicks(dialog.query, "yellow tram")
    qtbot.waitUntil(lambda: len(dialog.hits()) == 1, timeout=5000)
    shown = dialog.model.index(0).data(HTML_ROLE)
    assert "Trip to Lisbon" in shown
    assert "background-color" in shown and ">yellow</span>" in shown and ">tram</span>" in shown

    qtbot.keyClick(dialog.query, Qt.Key.Key_Return)
    assert window.windowTitle() == "Trip to Lisbon — TinyChat"
    assert window.sidebar.list.currentIndex().data() == "Trip to Lisbon"
    branch = [m.id for m in window.store.active_branch(trip.id)]
    assert len(branch) == 60 and branch[1] == hit.id  # switched to the tram branch, kept whole
    # The hit is the second message of 60, far from the newest ones a chat opens on: it is built, in view
    # and highlighted at once, before anything is painted.
    widget = window.chat_view.message_widget(hit.id)
    assert widget is not None and "yellow tram" in widget.body.text
    viewport = window.chat_view.viewport()
    top = widget.mapTo(viewport, widget.rect().topLeft()).y()
    assert 0 <= top < viewport.height()
    assert widget.property("found") is True and widget.accessibleDescription() == "Found by search"


def test_a_search_without_matches_says_so(qtbot, window):
    fill(window.store)
    dialog = window.actions_.search()
    qtbot.keyClicks(dialog.query, "submarine")
    qtbot.waitUntil(lambda: "No message contains" in dialog.summary.text(), timeout=5000)
    assert dialog.hits() == []
    qtbot.keyClick(dialog.query, Qt.Key.Key_Return)  # Enter with nothing found does nothing
    assert dialog.isVisible()


def test_scrolling_the_results_down_brings_more_matches_page_by_page(qtbot, window):
    conv = window.store.create_conversation(title="Lanterns")
    parent = None
    for i in range(120):
        parent = window.store.add_message(conv.id, parent, "user", f"lantern note {i}").id
    dialog = window.actions_.search()
    dialog.query.setText("lantern")
    dialog.run_search()
    assert len(dialog.hits()) == 50 and "scroll for older ones" in dialog.summary.text()
    bar = dialog.results.verticalScrollBar()
    bar.setValue(bar.maximum())
    qtbot.waitUntil(lambda: len(dialog.hits()) == 100, timeout=5000)
    bar.setValue(bar.maximum())
    qtbot.waitUntil(lambda: len(dialog.hits()) == 120, timeout=5000)
    assert len({h.message_id for h in dialog.hits()}) == 120
    assert dialog.summary.text().startswith("120 messages found") and "scroll" not in dialog.summary.text()
