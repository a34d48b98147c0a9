"""The network in the real main window (offscreen): the status bar's summary, Help ▸ Network…, the
airplane switch in Settings and on the Network page, the question a download asks in airplane mode,
and the Network section of Copy diagnostics. Downloads come from the local fake Hub."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator

import pytest
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

from app.core import paths
from app.core.settings import load_settings
from app.shell.about_dialog import diagnostics_text
from app.shell.main_window import MainWindow
from app.shell.network_actions import DOWNLOAD_ONCE, KEEP_OFFLINE
from engine import network_log
from tests.test_gui_first_run import catalog, extras, window  # the first-run window over the fake Hub

WAIT_MS = 20_000
__all__ = ["catalog", "window"]  # fixtures used by name
ONE_DOWNLOAD = re.compile(r"1 download \(\d+ [KM]B\)")  # the ~1 MB test level and its metadata


@pytest.fixture(autouse=True)
def _clean_log(window: MainWindow) -> Iterator[None]:
    # After the fake Hub started: its server looks up its own name (a reverse lookup), in this process.
    network_log.LOG.clear()  # and what earlier tests in this process left
    extras(window).network.poll()
    yield
    network_log.set_airplane(False)


def status_text(w: MainWindow) -> str:
    return extras(w).network.status_button.text()


def answer_question(button_text: str, seen: list[str]) -> None:
    """Press `button_text` in the modal question as soon as it shows, noting what it said."""
    def press() -> None:
        box = QApplication.activeModalWidget()
        if not isinstance(box, QMessageBox):
            QTimer.singleShot(20, press)
            return
        seen.append(box.text())
        next(b for b in box.buttons() if b.text() == button_text).click()
    QTimer.singleShot(0, press)


def test_the_status_bar_says_offline_then_names_the_download_and_the_page_lists_it(qtbot, window, hub):
    x = extras(window)
    assert status_text(window) == "Offline · no connections since start"
    x.welcome.download_button.click()
    qtbot.waitUntil(lambda: window.pages.currentIndex() == 0, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: bool(ONE_DOWNLOAD.fullmatch(status_text(window))), timeout=WAIT_MS)

    x.network.status_button.click()  # the summary opens the page
    page = x.network.dialog
    assert page is not None and page.isVisible() and page.windowTitle() == "Network"
    assert page.summary.text() == status_text(window)
    rows = page.rows()
    assert rows and all(r[4] == "Model download: Tiny Test Chat · Q4_K_M" and r[6] == "allowed" for r in rows)
    # The first download imports urllib3, which binds a probe socket to ::1 (only when no earlier test did).
    rows = [r for r in rows if r[1] != "Listening (this computer only)"]
    assert {r[1] for r in rows} == {"Connection"} and {r[3] for r in rows} == {hub.endpoint.rsplit(":", 1)[1]}
    assert any(r[5].endswith("KB") or r[5].endswith("MB") for r in rows)  # on the connection that brought them


def test_help_menu_opens_the_network_page(window):
    help_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&Help")
    item = next(a for a in help_menu.actions() if a.text() == "&Network…")
    item.trigger()
    page = extras(window).network.dialog
    assert page is not None and page.isVisible()
    assert page.empty.isVisible() and page.rows() == []


def test_airplane_mode_in_settings_is_saved_shown_everywhere_and_refuses_a_download(qtbot, window, hub):
    x = extras(window)
    settings = x.open_settings("Model")
    settings.airplane_box.click()
    assert network_log.airplane() and load_settings(paths.settings_path())[0].airplane_mode
    qtbot.waitUntil(lambda: status_text(window) == "Airplane mode · no connections since start", timeout=2000)
    page = x.network.open_dialog()
    assert page.airplane_box.isChecked()

    seen: list[str] = []
    answer_question(KEEP_OFFLINE, seen)
    with qtbot.waitSignal(x.switcher.failed, timeout=WAIT_MS):
        x.welcome.download_button.click()
    assert seen and seen[0].startswith("Airplane mode is on, so TinyChat does not connect to the internet.")
    assert "Go online for this one download?" in seen[0]
    assert "Airplane mode is on" in x.welcome.error_text()
    assert hub.requests == []  # nothing reached the hub

    page.airplane_box.click()  # off, from the Network page
    assert not network_log.airplane() and not load_settings(paths.settings_path())[0].airplane_mode
    qtbot.waitUntil(lambda: not settings.airplane_box.isChecked(), timeout=2000)  # Settings follows


def test_download_once_goes_online_for_that_download_only(qtbot, window, hub):
    x = extras(window)
    x.network.open_dialog().airplane_box.click()
    assert network_log.airplane()
    seen: list[str] = []
    answer_question(DOWNLOAD_ONCE, seen)
    x.welcome.download_button.click()
    qtbot.waitUntil(lambda: window.pages.currentIndex() == 0, timeout=WAIT_MS)
    assert seen and network_log.airplane()  # still on for everything else
    qtbot.waitUntil(lambda: bool(ONE_DOWNLOAD.fullmatch(status_text(window).removeprefix("Airplane mode · "))),
                    timeout=2000)
    assert status_text(window).startswith("Airplane mode · ")


def test_copy_diagnostics_includes_the_network_log(qtbot, window):
    x = extras(window)
    x.network.open_dialog().airplane_box.click()
    with pytest.raises(network_log.NetworkRefused):
        socket.create_connection(("127.0.0.1", 9))
    text = diagnostics_text(window.session)
    network = text.split("[Network]")[1]
    assert "Airplane mode: on" in network and "Since start: Airplane mode · 1 refused" in network
    assert "connection 127.0.0.1:9 — Unknown (no TinyChat feature asked) — refused" in network
    about = x.open_about()
    assert "127.0.0.1:9" in about.browser.toPlainText()
    about.copy_button.click()
    assert "connection 127.0.0.1:9" in QApplication.clipboard().text()
