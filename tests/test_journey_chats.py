"""Journeys: renaming and deleting chats from the sidebar, and finding a message with search. Whatever
happens to other chats, the one being read stays on screen; Undo brings a deleted chat back."""

from __future__ import annotations

from tests.journey import Home, JourneyApp

# 800 messages, the match in the second: far outside what a chat builds when it opens.
TRIP = [("Day 0: where to start?", "Ride the famous yellow tram 28 up the hill.")] + [
    (f"Day {i}: what next?", f"Walk around quarter number {i}.") for i in range(1, 400)]


def three_chats(home: Home) -> None:
    home.add_chat("Alpha plans", [("Plan the alpha release", "Start with the tests.")])
    home.add_chat("Bravo notes", [("Notes for bravo", "Bravo is the second.")])
    home.add_chat("Charlie ideas", [("Ideas for charlie", "Charlie comes third.")])


def shows_alpha(app: JourneyApp, title: str = "Alpha plans") -> None:
    assert app.title() == f"{title} — TinyChat"
    assert app.messages() == [("You", "Plan the alpha release"), ("Assistant", "Start with the tests.")]
    assert app.selected_chat() == title


def rename(app: JourneyApp, title: str, new_title: str) -> None:
    """Right-click the chat, choose Rename, type the new name over the old one and press Enter."""
    app.context_menu(app.one("list item", title), "Rename")
    dialog = app.dialog("Rename chat")
    box = app.one("text", "Chat name", within=dialog)
    assert app.text(box) == title and "focused" in box.states  # typing replaces the old name
    app.type_keys(new_title)
    app.wait(lambda: app.text(app.find_one("text", "Chat name", within=dialog)) == new_title, "the typed name")
    app.key("Return")
    app.wait(lambda: not app.find("dialog", "Rename chat"), "the Rename dialog to close")
    app.wait(lambda: app.find("list item", new_title), f"{new_title!r} in the sidebar")


def test_renaming_the_open_chat_or_another_one_keeps_the_open_chat_on_screen(desktop, hub, tmp_path):
    home = Home.create(tmp_path / "home", hub)
    three_chats(home)
    with JourneyApp(desktop, home, tmp_path) as app:
        app.open_chat("Alpha plans")

        rename(app, "Alpha plans", "Alpha release plan")
        shows_alpha(app, "Alpha release plan")
        rename(app, "Bravo notes", "Bravo summary")
        shows_alpha(app, "Alpha release plan")


def test_deleting_another_chat_keeps_the_open_one_and_undo_brings_each_back(desktop, hub, tmp_path):
    home = Home.create(tmp_path / "home", hub)
    three_chats(home)
    with JourneyApp(desktop, home, tmp_path) as app:
        app.open_chat("Alpha plans")

        app.context_menu(app.one("list item", "Bravo notes"), "Delete")
        app.wait(lambda: not app.find("list item", "Bravo notes"), "the deleted chat to leave the sidebar")
        shows_alpha(app)
        app.press("push button", "Undo")
        app.wait(lambda: app.find("list item", "Bravo notes"), "Undo to bring the chat back")
        shows_alpha(app)

        app.menu("Chat", "Delete chat")
        app.wait(lambda: not app.find("list item", "Alpha plans"), "the open chat to leave the sidebar")
        assert app.title() == "TinyChat" and app.messages() == [] and app.selected_chat() is None
        app.press("push button", "Undo")
        app.wait(lambda: app.title() == "Alpha plans — TinyChat", "Undo to reopen the chat")
        shows_alpha(app)


def test_search_shows_the_found_message_at_once_and_highlighted(desktop, hub, tmp_path):
    home = Home.create(tmp_path / "home", hub)
    home.add_chat("Trip to Lisbon", TRIP)
    home.add_chat("Pastel de nata", [("How do I make custard tarts?", "Bake puff pastry cups with custard.")])
    with JourneyApp(desktop, home, tmp_path) as app:
        app.open_chat("Pastel de nata")
        app.menu("File", "Search conversations…")
        search = app.dialog("Search conversations")
        app.type_text(app.one("text", "Search conversations", within=search), "yellow tram")
        app.wait(lambda: app.find(within=search, name_contains="1 message found"), "the search result")
        app.key("Return", app.one("text", "Search conversations", within=search))

        app.wait(lambda: app.title() == "Trip to Lisbon — TinyChat", "the found chat to open")
        # The very first look at the pane must already show the found message, highlighted.
        shown = app.shown_messages()
        found = [panel for panel, text in shown if "yellow tram" in text]
        assert found, f"the found message is not on screen: {[text for _, text in shown]}"
        assert found[0].description == "Found by search"
        assert app.selected_chat() == "Trip to Lisbon"
