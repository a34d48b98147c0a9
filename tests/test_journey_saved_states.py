"""Journey: the saved conversation states as a person meets them in the real app, through the
accessibility bus. After a chat, Settings → Speed shows how much disk they take; "Remove saved states"
brings that to 0 bytes and the files are gone; switching prompt lookup is remembered."""

from __future__ import annotations

from app.core.settings import Settings, load_settings
from app.shell.settings_dialog import PAGES
from app.shell.speed_page import LOOKUP_TEXT, REMOVE_TEXT
from tests.journey import Home, JourneyApp, Node


def open_page(app: JourneyApp, settings: Node, page: str) -> None:
    """Go to a Settings page with the keyboard, as a screen reader user does in the list of pages."""
    nav = app.one("list", "Settings pages", within=settings)
    app.click(app.one("list item", PAGES[0], within=nav))  # the pointer over the list: keys go there

    def selected() -> str:
        return next(n.name for n in app.find("list item", within=nav) if n.selected)

    for _ in range(len(PAGES)):
        now = app.wait(selected, "a selected page")
        if now == page:
            return
        app.key("Down" if PAGES.index(now) < PAGES.index(page) else "Up")
        app.wait(lambda was=now: selected() != was, "the next page")
    raise AssertionError(f"the page {page!r} could not be reached")


def shown_size(app: JourneyApp, settings: Node) -> str:
    return app.find_one("label", within=settings, id_suffix="SavedStatesSize").name


def test_settings_show_the_saved_states_size_and_removing_them_leaves_0_bytes_and_no_files(desktop, hub, tmp_path):
    home = Home.create(tmp_path / "home", hub)
    home.install("Q4_K_M")
    states = home.path / "cache" / "states"
    with JourneyApp(desktop, home, tmp_path) as app:
        app.wait(lambda: "Q4_K_M" in app.status(), "the model to load")
        app.chat("Tell me about gardens.")
        app.wait(lambda: list(states.glob("*.kvstate")), "the answer's state to be saved on disk")

        app.menu("Model", "Settings…")
        settings = app.dialog("Settings")
        open_page(app, settings, "Speed")
        size = app.wait(lambda: shown_size(app, settings) not in ("", "Measuring…") and shown_size(app, settings),
                        "the saved states' size")
        assert size != "0 bytes" and size.endswith((" KB", " MB")), size

        app.press("push button", REMOVE_TEXT, within=settings)
        app.wait(lambda: shown_size(app, settings) == "0 bytes", "the size to say 0 bytes")
        assert list(states.iterdir()) == []

        was = "checked" in app.one("check box", LOOKUP_TEXT, within=settings).states
        assert was is Settings().prompt_lookup
        app.press("check box", LOOKUP_TEXT, within=settings)
        app.wait(lambda: ("checked" in app.find_one("check box", LOOKUP_TEXT, within=settings).states) is not was,
                 "prompt lookup to show the other choice")
        assert load_settings(home.path / "config" / "settings.json")[0].prompt_lookup is not was
        app.press("push button", "Close", within=settings)
        assert app.quit() == 0
