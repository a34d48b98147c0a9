"""Journeys on the first-run page: a download paused and resumed after a restart, a refused model file,
and an offline computer. What is asserted is what a person sees and can press on that page."""

from __future__ import annotations

import re
import socket
import time
from types import SimpleNamespace

from tests.journey import Home, JourneyApp, Node

DOWNLOAD = "Download Tiny Test Chat (Q4_K_M, 1 MB)"
IMPORT = "Use a model file I have…"
DOWNLOADED = re.compile(r"Downloading (\d+) KB of ")
LEFT = re.compile(r"· (\d+) s left")


def closed_port() -> str:
    """An address where nothing listens: connecting fails at once, as on a computer that is offline."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def welcome_card(app: JourneyApp) -> Node:
    return app.one("panel", id_suffix="WelcomeCard")


def buttons(app: JourneyApp) -> list[str]:
    """The buttons a person sees on the first-run page, top to bottom."""
    return [n.name for n in app.find("push button", within=welcome_card(app))]


def page_text(app: JourneyApp) -> str:
    return "\n".join(n.text or n.name for n in app.find("label", within=welcome_card(app), with_text=True))


def test_a_download_paused_before_a_restart_is_offered_as_resume_and_its_time_left_is_about_right(
        desktop, hub, tmp_path):
    home = Home.create(tmp_path / "home", hub)
    hub.faults.trickle_bps = 200_000
    with JourneyApp(desktop, home, tmp_path) as app:
        app.press("push button", DOWNLOAD)
        # Most of the file on disk, as when a large model was paused late: resuming must not count it.
        app.wait(lambda: any(int(m.group(1)) >= 650 for n in app.find("label", name_contains="Downloading")
                             if (m := DOWNLOADED.search(n.name))), "650 KB to arrive")
        app.press("push button", "Cancel")
        app.one("push button", name_contains="Resume download")
        assert app.quit() == 0

    hub.faults.trickle_bps = 30_000  # slower now: the time left must be measured, not remembered
    with JourneyApp(desktop, home, tmp_path) as app:
        resume = app.one("push button", id_suffix="PrimaryButton")
        assert re.fullmatch(r"Resume download \(\d+ KB of 1 MB already here\)", resume.name), buttons(app)
        app.press("push button", resume.name)
        time.sleep(3)
        shown = app.wait(lambda: next((m for n in app.find("label", name_contains=" left")
                                       if (m := LEFT.search(n.name))), None), "the time left")
        read_at, said = time.monotonic(), int(shown.group(1))
        app.wait(lambda: not app.find("label", name_contains="Downloading"), "the download to finish", 60)
        took = time.monotonic() - read_at
        assert took / 2 <= said <= took * 2, f"said {said} s left, took {took:.1f} s"
        app.wait(lambda: app.find("text", "Message"), "the chat once the model is ready")


def test_a_refused_model_file_leaves_only_the_two_ways_in_and_no_download_advice(desktop, hub, tmp_path):
    home = Home.create(tmp_path / "home", hub)
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\0" * 100)
    with JourneyApp(desktop, home, tmp_path) as app:
        app.press("push button", IMPORT)
        picker = app.dialog("Choose a model file")
        app.type_text(app.one("text", "File name:", within=picker), str(broken))
        app.press("push button", "Open", within=picker)
        app.press("push button", "Copy into TinyChat", within=app.one("alert", "Use a model file"))
        app.wait(lambda: "can't be used" in page_text(app), "the reason the file was refused")
        assert buttons(app) == [DOWNLOAD, IMPORT]
        shown = page_text(app)
        assert "version 0" in shown  # the validator's reason
        assert "offline" not in shown and "Retry" not in shown


def test_offline_the_first_run_page_offers_one_way_to_retry_and_says_each_thing_once(desktop, hub, tmp_path):
    home = Home.create(tmp_path / "home", hub)
    home.hub = SimpleNamespace(endpoint=closed_port())
    with JourneyApp(desktop, home, tmp_path) as app:
        app.press("push button", DOWNLOAD)
        app.wait(lambda: "could not be" in page_text(app), "the download to fail")
        assert buttons(app) == ["Retry download", IMPORT]
        shown = page_text(app)
        assert "check your internet connection" in shown
        assert shown.count("continue where it stopped") == 1
