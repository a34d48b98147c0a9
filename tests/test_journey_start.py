"""Journeys: starting the app with a model, and reading a chat longer than the model's context. The meter
always counts tokens once a model is there, and says in full how much of a long chat the model sees."""

from __future__ import annotations

import re

from tests.journey import Home, JourneyApp, Node

TOKENS = re.compile(r"\d+ / 2048 tokens")
FORGETTING = re.compile(r"\d+ / 2048 tokens · \d+ older not in context")


def watch_meter_until_it_counts(app: JourneyApp) -> list[str]:
    """Every text the meter shows from now until it counts tokens."""
    seen: list[str] = []

    def counted() -> bool:
        text = app.meter()
        if not seen or seen[-1] != text:
            seen.append(text)
        return bool(TOKENS.match(text))
    app.wait(counted, "the meter to count tokens")
    return seen


def test_first_start_with_a_model_counts_tokens_from_the_start_and_never_says_no_model(desktop, hub, tmp_path):
    home = Home.create(tmp_path / "home", hub)
    home.install("Q4_K_M")
    with JourneyApp(desktop, home, tmp_path) as app:
        seen = watch_meter_until_it_counts(app)
        app.wait(lambda: "Q4_K_M" in app.status(), "the level in the status bar")
        assert app.title() == "TinyChat"
        assert "no model" not in seen, seen
        app.chat("Hello there")
        app.wait(lambda: TOKENS.fullmatch(app.meter()) and not app.meter().startswith("0 "),
                 "the meter to count the chat")
        assert app.quit() == 0

    with JourneyApp(desktop, home, tmp_path) as app:  # the chat is open again after a restart
        seen = watch_meter_until_it_counts(app)
        assert "no model" not in seen, seen
        assert app.title() == "Hello there — TinyChat"


def test_a_chat_longer_than_the_context_says_so_once_and_the_meter_shows_it_in_full(desktop, hub, tmp_path):
    home = Home.create(tmp_path / "home", hub)
    home.install("Q4_K_M")
    home.add_chat("A long talk", [(f"Question {i}: what about the weather today?",
                                   f"Answer {i}: sunny in the morning, rain later on.") for i in range(150)])
    with JourneyApp(desktop, home, tmp_path) as app:
        app.wait(lambda: "Q4_K_M" in app.status(), "the model to load")
        app.open_chat("A long talk")
        meter = app.wait(lambda: FORGETTING.fullmatch(app.meter()) and app.meter(),
                         "the meter to say older messages are not in context")
        assert "…" not in meter
        # Scroll up to where the model's memory ends: one line there says so, not a note per message.
        chat = app.find_one(id_suffix="ChatScroll")

        pane = app.find_one(id_suffix="ChatScroll.qt_scrollarea_viewport", with_extents=True).extents
        assert pane is not None

        def on_screen(node: Node) -> bool:
            return node.extents is not None and pane[1] <= node.extents[1] < pane[1] + pane[3]

        def scrolled_to_the_note() -> list:
            found = [n for n in app.find("label", within=chat, name_contains="in context", with_extents=True)
                     if on_screen(n)]
            if not found:
                app.wheel(chat, 10)
            return found
        seen = app.wait(scrolled_to_the_note, "scrolling up to the oldest messages the model sees")
        assert seen[0].name.startswith("Older messages")
        notes = app.find("label", within=chat, name_contains="in context")
        assert len(notes) == 1, [n.name for n in notes]
