"""Every control a person can use in the dialogs and pages around the chat has a name assistive
technology can read out (what Orca says, and what journey tests find controls by)."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import pytest
from PySide6.QtGui import QAccessible
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QAbstractSpinBox,
    QComboBox,
    QHeaderView,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QTextEdit,
    QWidget,
)

from app.chat.rename_dialog import RenameDialog
from app.models.import_choice import ImportChoice
from app.models.model_dialog import ModelDialog
from app.models.welcome_view import WelcomeView
from app.shell.about_dialog import AboutDialog
from app.shell.help_windows import GuideWindow, ShortcutsDialog
from app.shell.settings_dialog import PAGES, SettingsDialog
from tests.fakehub import FakeHub
from tests.gui_app import GuiApp, make_catalog, start_app

CONTROLS = (QAbstractButton, QLineEdit, QPlainTextEdit, QTextEdit, QAbstractSpinBox, QComboBox, QAbstractItemView,
            QProgressBar)


@pytest.fixture
def app(hub_home: Path, tmp_path: Path, hub: FakeHub) -> GuiApp:
    a = start_app(hub_home, make_catalog(tmp_path / "catalog.json", hub.commit))
    yield a
    a.shutdown()


def unnamed(root: QWidget) -> list[str]:
    """The controls under `root` that a screen reader would announce without a name."""
    missing = []
    for w in root.findChildren(QWidget):
        if not isinstance(w, CONTROLS) or not w.isVisibleTo(root):
            continue
        if isinstance(w, QHeaderView) or w.objectName().startswith("qt_"):
            continue  # parts of a table or scroll area, announced as its column headers and scrolling
        name = QAccessible.queryAccessibleInterface(w).text(QAccessible.Text.Name)
        if not name.strip():
            missing.append(f"{type(w).__name__} {w.objectName()!r}")
    return missing


def test_the_settings_pages_the_model_manager_and_the_welcome_page_name_every_control(app, qtbot):
    settings = SettingsDialog(app.switcher)
    qtbot.addWidget(settings)
    for page in PAGES:
        settings.show_page(page)
        assert unnamed(settings) == [], page
    settings.quant_list.pick("Q8_0")  # the download offer and its button
    assert unnamed(settings) == []

    models = ModelDialog(app.switcher)
    qtbot.addWidget(models)
    assert unnamed(models) == []

    welcome = WelcomeView(app.switcher)
    qtbot.addWidget(welcome)
    assert unnamed(welcome) == []
    welcome.panel.begin("Getting Tiny Test Chat")  # the download in progress: bar and Cancel
    assert unnamed(welcome) == []


def test_about_help_rename_and_the_import_question_name_every_control(app, qtbot, tmp_path):
    model_file = tmp_path / "mine.gguf"
    model_file.write_bytes(b"GGUF")
    for dialog in (AboutDialog(app.session), GuideWindow(), ShortcutsDialog([("New chat", "Ctrl+N")]),
                   ImportChoice(model_file), RenameDialog("c1", "A chat")):
        qtbot.addWidget(dialog)
        assert unnamed(dialog) == [], dialog.windowTitle()


def test_with_a_screen_reader_asking_early_the_settings_page_list_rows_do_not_overlap(app, qtbot):
    from PySide6.QtWidgets import QApplication

    from app.core.settings import Settings
    from app.ui import theme

    theme.apply(QApplication.instance(), Settings().theme, Settings().font_size)  # its style sheet pads each row
    QAccessible.setActive(True)
    try:
        settings = SettingsDialog(app.switcher)
        qtbot.addWidget(settings)
        rows = QAccessible.queryAccessibleInterface(settings.nav)
        for i in range(rows.childCount()):  # what a screen reader asks as the rows are added
            rows.child(i).rect()
        settings.show()
        rects = [settings.nav.visualItemRect(settings.nav.item(i)) for i in range(settings.nav.count())]
        assert all(a.bottom() < b.top() for a, b in pairwise(rects)), [r.getRect() for r in rects]
    finally:
        QAccessible.setActive(False)


def test_the_chat_window_names_every_control_including_a_code_block(qtbot, tmp_path, monkeypatch):
    from app.core.store import Store
    from tests.gui_support import close_window, open_window

    monkeypatch.setenv("TINYCHAT_HOME", str(tmp_path))
    store, _ = Store.open(tmp_path / "data" / "tinychat.db")
    conv = store.create_conversation(title="Code")
    question = store.add_message(conv.id, None, "user", "Show me Python")
    store.add_message(conv.id, question.id, "assistant", "```python\nprint('hi')\n```\n\n> quoted")
    store.close()
    window = open_window(qtbot, tmp_path, None)
    try:
        window.session.open(conv.id)
        assert unnamed(window) == []
        code = QAccessible.queryAccessibleInterface(window.findChild(QPlainTextEdit, "CodeText"))
        assert code.text(QAccessible.Text.Name) == "python code"
        assert QAccessible.queryAccessibleInterface(window.sidebar.new_button).text(QAccessible.Text.Name) == "New chat"
    finally:
        close_window(window)
