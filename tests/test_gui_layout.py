"""The window at its edges: usable 560 pixels wide with a sidebar that folds away, a delete toast whose
text is never cut, and a Help menu with the user guide and the keyboard shortcuts."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication, QLabel, QWidget

from app.core.network_report import DOWNLOAD
from app.shell.main_window import MainWindow
from app.shell.window_actions import WindowActions, install
from engine import network_log
from tests.gui_support import close_window, open_window, scripted_model, send

LONG_CODE = "```python\nprint('a line of code much wider than a narrow window can show in one go, really')\n```"


@pytest.fixture
def window(qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TINYCHAT_HOME", str(tmp_path))
    w = open_window(qtbot, tmp_path, scripted_model())
    w.actions_ = install(w)  # the welcome page, menus and dialogs: all of it must fit too
    yield w
    close_window(w)


def extras(w: MainWindow) -> WindowActions:
    return w.actions_


def settle() -> None:
    for _ in range(5):
        QApplication.processEvents()


def text_fits(label: QLabel) -> bool:
    """True when `label` shows its whole text: on one line within its width, or wrapped within its height."""
    if label.wordWrap():
        return label.height() >= label.heightForWidth(label.width())
    return label.fontMetrics().horizontalAdvance(label.text()) <= label.contentsRect().width()


def inside(widget: QWidget, outer: QWidget) -> bool:
    """True when `widget` lies within `outer`'s visible area horizontally."""
    left = widget.mapTo(outer, widget.rect().topLeft()).x()
    return left >= 0 and left + widget.width() <= outer.width()


def test_the_window_is_usable_560_pixels_wide(qtbot, window):
    send(qtbot, window, "A question with some words in it")
    conv = window.session.open_id
    window.store.add_message(conv, window.store.active_branch(conv)[-1].id, "user", LONG_CODE)
    window.session.open(None)
    window.session.open(conv)
    window.resize(560, 640)
    settle()
    assert window.width() == 560
    box = window.composer.input
    room = box.viewport().width() - 2 * box.document().documentMargin()
    assert box.fontMetrics().horizontalAdvance(box.placeholderText()) <= room  # one line, not wrapped and cut
    viewport = window.chat_view.viewport()
    for mid in window.chat_view.message_ids():
        assert inside(window.chat_view.message_widget(mid), viewport)
    assert not window.chat_view.horizontalScrollBar().isVisible()
    for label in window.status.findChildren(QLabel):
        if label.isVisible() and label.text():
            assert text_fits(label) or label.toolTip() == label.text(), label.text()

    extras(window).show_welcome()  # the first-run page fits as well
    settle()
    assert window.width() == 560
    assert inside(window.findChild(QWidget, "WelcomeCard"), extras(window).welcome)


def test_the_sidebar_folds_away_from_the_view_menu_and_stays_folded_after_a_restart(qtbot, window):
    window.resize(900, 600)
    settle()
    toggle = extras(window).sidebar_toggle.action
    assert toggle.isChecked() and window.sidebar.isVisible()
    chat_width = window.pages.width()
    toggle.trigger()
    settle()
    assert not window.sidebar.isVisible() and window.pages.width() > chat_width
    window.close()
    again = MainWindow(window.store, window.settings.current, model=None, window_state=window.state_file)
    again.actions_ = install(again)
    again.show()
    settle()
    try:
        assert not again.sidebar.isVisible() and not extras(again).sidebar_toggle.action.isChecked()
        extras(again).sidebar_toggle.action.trigger()
        assert again.sidebar.isVisible()
    finally:
        again.close()
    assert QSettings(str(window.state_file), QSettings.Format.IniFormat).value("window/sidebar") in ("true", True)


def test_a_narrow_window_folds_the_sidebar_and_a_wide_one_brings_it_back(qtbot, window):
    window.resize(900, 600)
    settle()
    assert window.sidebar.isVisible()
    window.resize(560, 600)
    settle()
    assert not window.sidebar.isVisible()
    extras(window).sidebar_toggle.action.trigger()  # wanted anyway: shown, and the window stays 560 wide
    settle()
    assert window.sidebar.isVisible() and window.width() == 560
    window.resize(900, 600)
    settle()
    assert window.sidebar.isVisible()


def test_the_delete_toast_shows_the_whole_title(qtbot, window):
    send(qtbot, window, "Plans for the long weekend trip to the mountains and lakes")
    window.splitter.setSizes([200, 800])
    settle()
    window.session.trash(window.session.open_id)
    settle()
    label = window.sidebar.undo_label
    assert window.sidebar.undo_bar.isVisible()
    assert "Plans for the long weekend" in label.text()
    assert text_fits(label)
    assert inside(window.sidebar.undo_button, window.sidebar)


def test_help_offers_the_user_guide_offline_and_the_keyboard_shortcuts(qtbot, window):
    help_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&Help")
    items = [a.text().replace("&", "") for a in help_menu.actions() if not a.isSeparator()]
    assert items == ["User guide", "Keyboard shortcuts", "Network…", "About TinyChat"]

    guide = extras(window).open_guide()
    qtbot.addWidget(guide)
    shown = guide.browser.toPlainText()
    assert "TinyChat user guide" in shown and "Switching the quantization level" in shown
    guide.show()
    settle()
    assert not guide.browser.horizontalScrollBar().isVisible()  # screenshots scaled to the window's width
    keys = extras(window).open_shortcuts()
    qtbot.addWidget(keys)
    rows = keys.rows()
    assert ("New chat", "Ctrl+N") in rows and ("Search conversations…", "Ctrl+F") in rows
    assert ("Export ▸ This chat…", "Ctrl+E") in rows
    assert ("Send the message", "Enter") in rows and ("New line in the message", "Shift+Enter") in rows
    assert ("Show sidebar", "Ctrl+Shift+S") in rows and ("User guide", "F1") in rows
    assert all(key for _, key in rows)


def test_the_guide_shows_a_picture_the_installed_app_does_not_carry_as_its_caption(tmp_path, monkeypatch):
    from app.shell import help_windows

    bundle = tmp_path / "bundle"  # laid out like the frozen app's data folder: the guide, no screenshots
    (bundle / "docs").mkdir(parents=True)
    (bundle / "docs" / "user-guide.md").write_text("# Guide\n\n![First start](screenshots/first-run.png)\n")
    monkeypatch.setattr(help_windows, "resource_path", lambda rel: bundle / rel)
    assert help_windows.guide_markdown() == "# Guide\n\n*First start*\n"
    (bundle / "docs" / "screenshots").mkdir()
    (bundle / "docs" / "screenshots" / "first-run.png").write_bytes(b"\x89PNG")
    assert "![First start](screenshots/first-run.png)" in help_windows.guide_markdown()


def test_a_long_sessions_network_summary_does_not_hold_the_window_wide(qtbot, window):
    # The log is the whole process's: real loopback connections under several features, as a long session
    # with downloads, other connections and API requests leaves it.
    network_log.LOG.clear()
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        for feature, subject in [(DOWNLOAD, "Tiny Test Chat · Q4_K_M"), (DOWNLOAD, "Tiny Test Chat · Q8_0"),
                                 (DOWNLOAD, "Tiny Test Chat · F16"), ("Update check", ""), ("Something else", "")]:
            with network_log.purpose(feature, subject), socket.create_connection(("127.0.0.1", port)):
                pass
    for _ in range(3):
        network_log.record_request("127.0.0.1", port)
    try:
        button = extras(window).network.status_button
        extras(window).network.poll()
        whole = button.text()
        assert whole.startswith("3 downloads") and "2 other connections" in whole and "3 API requests" in whole
        window.resize(560, 640)
        settle()
        assert window.width() == 560
        assert inside(button, window)
        assert button.accessibleName() == whole  # a screen reader hears all of it, however little is painted
        window.resize(1400, 640)
        settle()
        assert button.accessibleName() == whole
    finally:
        network_log.LOG.clear()
