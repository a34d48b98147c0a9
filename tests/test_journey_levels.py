"""Journey: switching the quantization level while a chat is open, the three ways a person can — a row
of the level table in Settings, "Download … and use it" there, and Use in the model manager. The chat
stays on screen, and the next answer, the status bar and the meter all speak of the new level."""

from __future__ import annotations

import re

import pytest

from tests.journey import Home, JourneyApp

TOKENS = re.compile(r"\d+ / 2048 tokens")


def switch_in_settings(app: JourneyApp) -> None:
    app.menu("Model", "Settings…")
    settings = app.dialog("Settings")
    table = app.one(None, "Quantization levels", within=settings)
    app.click(app.one("table cell", "Q8_0", within=table))
    app.wait(lambda: "Q8_0" in app.status(), "the status bar to name Q8_0")
    app.press("push button", "Close", within=settings)


def download_in_settings(app: JourneyApp) -> None:
    app.menu("Model", "Settings…")
    settings = app.dialog("Settings")
    table = app.one(None, "Quantization levels", within=settings)
    app.click(app.one("table cell", "Q8_0", within=table))
    offer = app.one("push button", within=settings, name_contains="and use it")
    app.press("push button", offer.name, within=settings)
    app.wait(lambda: "Q8_0" in app.status(), "the download of Q8_0 and the status bar to name it")
    app.press("push button", "Close", within=app.dialog("Settings"))


def use_in_model_manager(app: JourneyApp) -> None:
    app.menu("Model", "Models…")
    app.press("push button", "Use Q8_0", within=app.dialog("Models"))
    app.wait(lambda: "Q8_0" in app.status(), "the status bar to name Q8_0")
    app.press("push button", "Close", within=app.dialog("Models"))


WAYS = {"a row of the level table": (switch_in_settings, ("Q4_K_M", "Q8_0")),
        "download and use": (download_in_settings, ("Q4_K_M",)),
        "Use in the model manager": (use_in_model_manager, ("Q4_K_M", "Q8_0"))}


@pytest.mark.parametrize("way", list(WAYS))
def test_switching_the_level_keeps_the_open_chat_and_the_next_answer_uses_the_new_level(desktop, hub, tmp_path, way):
    switch, installed = WAYS[way]
    home = Home.create(tmp_path / "home", hub)
    home.install(*installed)
    with JourneyApp(desktop, home, tmp_path) as app:
        app.wait(lambda: "Q4_K_M" in app.status(), "the model to load")
        app.chat("Plan a picnic")
        title, shown = app.title(), app.messages()
        assert title != "TinyChat" and title.endswith("— TinyChat")
        assert [who for who, _ in shown] == ["You", "Assistant"]

        switch(app)

        app.wait(lambda: "Q8_0" in app.status() and "Loading" not in app.status(), "the new level to load")
        assert app.title() == title
        assert app.messages() == shown
        assert app.selected_chat() == title.removesuffix(" — TinyChat")
        app.wait(lambda: TOKENS.fullmatch(app.meter()), "the meter to count the chat's tokens")

        app.chat("And what to drink?")
        panels = app.message_panels()
        assert [p.name for p in panels] == ["You", "Assistant", "You", "Assistant"]
        assert app.title() == title
        meta = [n.name for n in app.find("label", within=panels[-1], id_suffix="MetaLabel")]
        assert meta and meta[0].startswith("Q8_0 · ")
        assert app.selected_chat() == title.removesuffix(" — TinyChat")
