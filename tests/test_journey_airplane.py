"""Journey: airplane mode as a person meets it, in the real app on a real display through the
accessibility bus. Switched on in Settings, a first-run download asks before going online; keeping
airplane mode refuses it in plain words, and nothing reaches the hub. Switched off on the Network page,
"Retry download" fetches the model and the status bar counts the download."""

from __future__ import annotations

from app.shell.network_dialog import AIRPLANE_TEXT
from tests.journey import Home, JourneyApp, Node

DOWNLOAD = "Download Tiny Test Chat (Q4_K_M, 1 MB)"


def network_status(app: JourneyApp) -> str:
    """What the status bar says about the network (the button that opens the Network page)."""
    bar = app.find_one("status bar", within=app.main_window())
    return app.find_one("push button", within=bar, id_suffix="NetworkStatus").name


def switch(app: JourneyApp, window: Node) -> None:
    app.press("check box", AIRPLANE_TEXT, within=window)


def test_airplane_mode_refuses_a_download_until_switched_off_then_the_download_works(desktop, hub, tmp_path):
    home = Home.create(tmp_path / "home", hub)
    with JourneyApp(desktop, home, tmp_path) as app:
        app.wait(lambda: network_status(app) == "Offline · no connections since start", "the network summary")

        app.menu("Model", "Settings…")
        settings = app.dialog("Settings")
        switch(app, settings)
        app.wait(lambda: "checked" in app.find_one("check box", AIRPLANE_TEXT, within=settings).states,
                 "the airplane switch to show it is on")
        app.press("push button", "Close", within=settings)
        app.wait(lambda: network_status(app) == "Airplane mode · no connections since start",
                 "the status bar to say airplane mode is on")

        app.press("push button", DOWNLOAD)
        question = app.one(None, "Airplane mode is on")
        said = " ".join(n.name for n in app.find("label", within=question))
        assert "TinyChat does not connect to the internet" in said and "this one download" in said, said
        app.press("push button", "Keep airplane mode", within=question)
        refusal = app.one("label", name_contains="allow it for this one download, or switch airplane mode off")
        assert "could not be downloaded" in refusal.name and "Airplane mode is on" in refusal.name
        assert hub.requests == []

        app.menu("Help", "Network…")
        page = app.dialog("Network")
        switch(app, page)
        app.wait(lambda: network_status(app) == "Offline · no connections since start",
                 "the status bar to say airplane mode is off")
        app.press("push button", "Close", within=page)

        app.press("push button", "Retry download")
        app.wait(lambda: network_status(app).startswith("1 download ("), "the download to be counted")
        app.wait(lambda: "Q4_K_M" in app.status(), "the downloaded level to load")
        assert hub.requests and app.quit() == 0
