"""Journeys: starting the app and chatting, through the real window and the accessibility bus."""

from __future__ import annotations

import re

from tests.journey import Home, JourneyApp


def test_first_start_with_a_model_shows_its_level_and_the_tokens_in_context(desktop, hub, tmp_path):
    home = Home.create(tmp_path / "home", hub)
    home.install("Q4_K_M")
    with JourneyApp(desktop, home, tmp_path) as app:
        app.wait(lambda: "Q4_K_M" in app.status(), "the level in the status bar")
        assert app.title() == "TinyChat"
        meter = app.wait(lambda: re.fullmatch(r"\d+ / 2048 tokens", app.meter()), "the tokens on the meter")
        assert meter
