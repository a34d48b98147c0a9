"""The main window: sidebar | chat + composer, menus and shortcuts, status bar, window state.

It assembles widgets and menus and wires them to the Session, which owns what is shown (the open
chat, the model, the settings): widget actions call Session methods, Session signals update widgets.

Window geometry, the splitter and the last open chat live in a small Qt INI file (`window.ini`) next to
the settings, not in settings.json: they are Qt's binary state blobs, not preferences, and keeping them
apart leaves settings.py free of Qt and the settings file readable. It is under the config dir, so
TINYCHAT_HOME isolates it too.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import QSettings, Qt, QTimer, Slot
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMenu,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from app.background.engine_worker import EngineThread
from app.chat.answer_keeper import ask_to_retry
from app.chat.chat_view import ChatView
from app.chat.composer import Composer
from app.chat.conversation_list import ConversationList
from app.chat.model_state import ModelStatus
from app.chat.session import ChatUsage, OpenChat, Session
from app.chat.settings_service import SettingsService, save_to_config
from app.core import paths
from app.core.model_choice import choose_model
from app.core.settings import Settings
from app.core.store import Store
from app.core.store_types import StoreError
from app.shell.status_bar import StatusBar
from app.ui import theme
from app.ui.wiring import connect_signals
from engine import cpu_build
from engine.backend import Engine
from engine.select import create_engine
from engine.types import ModelInfo

log = logging.getLogger(__name__)
NOTICE_MS = 10_000
_UNSET = object()
_FALLBACK_KEYS = {QKeySequence.StandardKey.New: "Ctrl+N", QKeySequence.StandardKey.Close: "Ctrl+W",
                  QKeySequence.StandardKey.Quit: "Ctrl+Q"}


class MainWindow(QMainWindow):
    """Everything the user sees. Build it from code (tests, self-test) with an explicit model and
    engine factory, or let it pick the installed model from the settings."""

    def __init__(self, store: Store, settings: Settings, engine_factory: Callable[[], Engine] | None = None,
                 model: ModelInfo | object | None = _UNSET, window_state: Path | None = None,
                 save_settings: Callable[[Settings], None] = save_to_config) -> None:
        super().__init__()
        self.setWindowTitle("TinyChat")
        self.store = store
        self.state_file = window_state or paths.config_dir() / "window.ini"
        self.settings = SettingsService(settings, save_settings)
        factory = engine_factory or (lambda: create_engine(self.settings.current.engine))
        self.engine = EngineThread(factory)
        self.session = Session(store, self.settings, self.engine)
        self._closed = False
        self._build()
        self._build_menus()
        self._connect()
        self.engine.start()
        if model is _UNSET:
            model, reason = choose_model(settings)
        else:
            reason = ""
        self.session.start(model if isinstance(model, ModelInfo) else None, reason)
        self._restore_state()

    # ------------------------------------------------------------------ build
    def _build(self) -> None:
        self.sidebar = ConversationList(self)
        self.chat_view = ChatView(self)
        self.composer = Composer(self)
        self.notice_bar = QWidget(self)
        row = QHBoxLayout(self.notice_bar)
        row.setContentsMargins(24, 4, 24, 0)
        self.notice_label = QLabel(self.notice_bar)
        self.notice_label.setObjectName("Notice")
        self.notice_label.setWordWrap(True)
        dismiss = QPushButton("✕", self.notice_bar)
        dismiss.setFlat(True)
        dismiss.setFixedWidth(28)
        dismiss.setAccessibleName("Dismiss")
        dismiss.clicked.connect(self.notice_bar.hide)
        row.addWidget(self.notice_label, 1)
        row.addWidget(dismiss)
        self.notice_bar.hide()
        # Not QTimer(singleShot=…, interval=…): PySide6 6.12 miscounts references of property keyword
        # arguments and the interpreter aborts at exit.
        self._notice_timer = QTimer(self)
        self._notice_timer.setSingleShot(True)
        self._notice_timer.setInterval(NOTICE_MS)
        self._notice_timer.timeout.connect(self.notice_bar.hide)

        chat_page = QWidget(self)
        lay = QVBoxLayout(chat_page)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        lay.addWidget(self.chat_view, 1)
        lay.addWidget(self.notice_bar)
        lay.addWidget(self.composer)
        # Page 0 is the chat. The first-run welcome adds itself as another page and shows it
        # while no model is installed; nothing else here needs to change.
        self.pages = QStackedWidget(self)
        self.pages.addWidget(chat_page)

        self.splitter = QSplitter(Qt.Orientation.Horizontal, self)
        self.splitter.addWidget(self.sidebar)
        self.splitter.addWidget(self.pages)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setChildrenCollapsible(False)
        self.sidebar.setMinimumWidth(180)
        self.splitter.setSizes([250, 850])
        self.setCentralWidget(self.splitter)
        self.status = StatusBar(self)
        self.status.set_build(cpu_build.apply())
        self.setStatusBar(self.status)

    def _build_menus(self) -> None:
        """The menus, each kept by name so the pieces added later (window_actions) find them without
        counting positions."""
        bar = self.menuBar()
        s = self.session
        self.file_menu = bar.addMenu("&File")
        self.new_action = self._action(self.file_menu, "&New chat", QKeySequence.StandardKey.New, self.new_chat)
        self.file_extras = self.file_menu.addSeparator()  # search, export and import go here
        self._action(self.file_menu, "&Close window", QKeySequence.StandardKey.Close, self.close)
        self._action(self.file_menu, "&Quit", QKeySequence.StandardKey.Quit, self.close)
        self.chat_menu = bar.addMenu("&Chat")
        self.stop_action = self._action(self.chat_menu, "&Stop generating", QKeySequence(Qt.Key.Key_Escape), s.stop)
        self.regenerate_action = self._action(self.chat_menu, "&Regenerate answer", QKeySequence("Ctrl+R"),
                                              s.regenerate_last)
        self._action(self.chat_menu, "&Focus message box", QKeySequence("Ctrl+L"), self.composer.focus_input)
        self.chat_menu.addSeparator()
        self._action(self.chat_menu, "Re&name chat", QKeySequence(Qt.Key.Key_F2), self.rename_current)
        self._action(self.chat_menu, "&Delete chat", None, self.delete_current)
        self.model_menu = bar.addMenu("&Model")  # settings, model manager and import attach here
        self.view_menu = bar.addMenu("&View")
        self.larger_text_action = self._action(self.view_menu, "&Larger text", QKeySequence.StandardKey.ZoomIn,
                                               lambda: self._zoom(1))
        self.smaller_text_action = self._action(self.view_menu, "&Smaller text", QKeySequence.StandardKey.ZoomOut,
                                                lambda: self._zoom(-1))
        self.help_menu = bar.addMenu("&Help")

    def _action(self, menu: QMenu, text: str, key: QKeySequence | QKeySequence.StandardKey | None,
                slot: Callable[[], object]) -> QAction:
        action = QAction(text, self)
        if isinstance(key, QKeySequence.StandardKey):
            # Some platforms define no binding for a standard key (Quit on Windows and on generic Linux
            # themes): fall back to the usual Ctrl/Cmd one so the shortcut works everywhere.
            action.setShortcuts(QKeySequence.keyBindings(key) or [QKeySequence(_FALLBACK_KEYS[key])])
        elif key is not None:
            action.setShortcut(key)
        action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        action.triggered.connect(slot)
        menu.addAction(action)
        return action

    def _connect(self) -> None:
        s = self.session
        connect_signals(
            s, opened=self._on_opened, titleChanged=self._on_title, conversationsChanged=self.sidebar.set_conversations,
            conversationChanged=self.sidebar.put, conversationRemoved=self.sidebar.remove,
            messageAdded=self.chat_view.append_message, streamText=self.chat_view.stream,
            messageFinished=self.chat_view.finish_message, usageChanged=self._on_usage, modelChanged=self._on_model,
            generatingChanged=self._on_generating, speedChanged=self.status.set_speed, notice=self.show_notice,
            undoOffered=self.sidebar.offer_undo)
        self.settings.changed.connect(self._on_settings)
        connect_signals(self.sidebar, selected=s.open, newChatRequested=self.new_chat, renameRequested=s.rename,
                        pinRequested=s.set_pinned, deleteRequested=s.trash, undoRequested=s.undo_trash)
        connect_signals(self.chat_view, regenerateRequested=s.regenerate, editSubmitted=s.edit,
                        deleteRequested=s.delete_message, branchRequested=s.switch_branch)
        connect_signals(self.composer, sendRequested=self.send, stopRequested=s.stop)

    # ----------------------------------------------------------------- actions
    @Slot()
    def new_chat(self) -> None:
        self.session.new_chat()
        self.composer.focus_input()

    @Slot(str)
    def send(self, text: str) -> None:
        if self.session.send(text):
            self.composer.clear()  # refused: the text stays in the composer

    @Slot()
    def rename_current(self) -> None:
        if self.session.open_id:
            self.sidebar.start_rename(self.session.open_id)

    @Slot()
    def delete_current(self) -> None:
        if self.session.open_id:
            self.session.trash(self.session.open_id)

    def _zoom(self, step: int) -> None:
        current = self.settings.current
        size = min(max(current.font_size + step, 6), 48)
        error = self.settings.apply(replace(current, font_size=size))
        if error:
            self.show_notice(error)

    # ------------------------------------------------------- session → widgets
    @Slot(object)
    def _on_opened(self, chat: OpenChat) -> None:
        self.chat_view.show_messages(chat.views, reveal=chat.reveal)
        self.sidebar.select(chat.conversation_id)
        self._on_title(chat.title)

    @Slot(str)
    def _on_title(self, title: str) -> None:
        self.setWindowTitle(f"{title} — TinyChat" if title else "TinyChat")

    @Slot(object)
    def _on_usage(self, usage: ChatUsage) -> None:
        self.status.meter.set_usage(usage.tokens, usage.n_ctx, len(usage.forgotten))
        self.chat_view.set_forgotten(usage.forgotten)
        if usage.overflow:
            self.show_notice(usage.overflow)

    @Slot(object)
    def _on_model(self, status: ModelStatus) -> None:
        self.status.set_model(status)
        self._sync_composer()

    @Slot(object)
    def _on_generating(self, conversation_id: str | None) -> None:
        self.sidebar.set_generating(conversation_id)
        self._sync_composer()

    def _sync_composer(self) -> None:
        status = self.session.model.status
        reason = None if status.ready else (status.text or "No model loaded.")
        generating = self.session.generating
        self.composer.set_blocked(reason)
        self.composer.set_generating(generating)
        self.stop_action.setEnabled(generating)
        self.chat_view.set_empty_hint(reason)

    @Slot(object, object)
    def _on_settings(self, old: Settings, new: Settings) -> None:
        if (old.theme, old.font_size) != (new.theme, new.font_size):
            self.apply_theme()

    @Slot(object)
    def apply_system_theme(self, _scheme: object = None) -> None:
        """Re-apply the palette after the desktop switched light/dark, and redraw the chat with it."""
        self.apply_theme()

    def apply_theme(self) -> None:
        """Apply the theme and font size in force, and redraw the chat with them."""
        app = QApplication.instance()
        if isinstance(app, QApplication):
            s = self.settings.current
            theme.apply(app, s.theme, s.font_size)
            self.chat_view.restyle()

    @Slot(str)
    def show_notice(self, text: str) -> None:
        """A plain sentence above the composer, dismissed after a few seconds."""
        self.notice_label.setText(text)
        self.notice_bar.show()
        self._notice_timer.start()

    # ------------------------------------------------------------ window state
    def _restore_state(self) -> None:
        qs = QSettings(str(self.state_file), QSettings.Format.IniFormat)
        geometry = qs.value("window/geometry")
        if geometry is None or not self.restoreGeometry(geometry):
            self.resize(1100, 720)
        splitter = qs.value("window/splitter")
        if splitter is not None:
            self.splitter.restoreState(splitter)
        last = qs.value("chat/last_conversation")
        if isinstance(last, str) and last:
            try:
                if self.store.get_conversation(last).trashed_at is None:
                    self.session.open(last)
            except StoreError:
                pass  # deleted since: start with a new chat

    def save_state(self) -> None:
        qs = QSettings(str(self.state_file), QSettings.Format.IniFormat)
        qs.setValue("window/geometry", self.saveGeometry())
        qs.setValue("window/splitter", self.splitter.saveState())
        qs.setValue("chat/last_conversation", self.session.open_id or "")
        qs.sync()

    def closeEvent(self, event: QCloseEvent) -> None:
        """Save the window, stop any answer (kept as partial) and join the engine thread."""
        if not self._closed:
            self._closed = True
            self.save_state()
            self.session.shutdown()
            keeper = self.session.controller.keeper
            while len(keeper) and ask_to_retry(self, len(keeper)):  # a full disk must not eat an answer
                keeper.stop()
        event.accept()
