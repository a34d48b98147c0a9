"""The main window: sidebar | chat + composer, menus and shortcuts, status bar, window state.

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

from app.background.engine_worker import ContextUsage, EngineThread
from app.chat.answer_keeper import ask_to_retry
from app.chat.chat_controller import ChatController
from app.chat.chat_view import ChatView
from app.chat.composer import Composer
from app.chat.conversation_list import ConversationList
from app.chat.message_widget import MessageView
from app.core import paths
from app.core.model_choice import choose_model
from app.core.settings import Settings
from app.core.store import Store
from app.core.store_types import StoredMessage, StoreError
from app.shell.status_bar import StatusBar
from app.ui import theme
from engine.backend import Engine
from engine.select import create_engine
from engine.types import GenerationStats, ModelInfo

log = logging.getLogger(__name__)
NOTICE_MS = 10_000
_UNSET = object()
_FALLBACK_KEYS = {QKeySequence.StandardKey.New: "Ctrl+N", QKeySequence.StandardKey.Close: "Ctrl+W",
                  QKeySequence.StandardKey.Quit: "Ctrl+Q"}


class MainWindow(QMainWindow):
    """Everything the user sees. Build it from code (tests, self-test) with an explicit model and
    engine factory, or let it pick the installed model from the settings."""

    def __init__(self, store: Store, settings: Settings, engine_factory: Callable[[], Engine] | None = None,
                 model: ModelInfo | object | None = _UNSET, window_state: Path | None = None) -> None:
        super().__init__()
        self.setWindowTitle("TinyChat")
        self.store = store
        self.state_file = window_state or paths.config_dir() / "window.ini"
        factory = engine_factory or (lambda: create_engine(settings.engine))
        self.engine = EngineThread(factory)
        self.controller = ChatController(store, settings, self.engine)
        self.current_id: str | None = None
        self._closed = False
        self._build()
        self._build_menus()
        self._connect()
        try:
            store.purge_trash()  # conversations deleted in an earlier session and not undone
        except StoreError as e:
            log.warning("could not empty the trash: %s", e.detail)
        self.refresh_conversations()
        self._restore_state()
        self.engine.start()
        if model is _UNSET:
            model, reason = choose_model(settings)
        else:
            reason = ""
        self.controller.load_model(model if isinstance(model, ModelInfo) else None, reason)

    @property
    def settings(self) -> Settings:
        """The settings in force (the settings dialog replaces them on the controller)."""
        return self.controller.settings

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
        self.setStatusBar(self.status)

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        self.new_action = self._action(file_menu, "&New chat", QKeySequence.StandardKey.New, self.new_chat)
        file_menu.addSeparator()
        self._action(file_menu, "&Close window", QKeySequence.StandardKey.Close, self.close)
        self._action(file_menu, "&Quit", QKeySequence.StandardKey.Quit, self.close)
        chat = bar.addMenu("&Chat")
        self.stop_action = self._action(chat, "&Stop generating", QKeySequence(Qt.Key.Key_Escape), self.stop)
        self.regenerate_action = self._action(chat, "&Regenerate answer", QKeySequence("Ctrl+R"),
                                              self.regenerate_last)
        self._action(chat, "&Focus message box", QKeySequence("Ctrl+L"), self.composer.focus_input)
        chat.addSeparator()
        self._action(chat, "Re&name chat", QKeySequence(Qt.Key.Key_F2), self.rename_current)
        self._action(chat, "&Delete chat", None, self.delete_current)
        self.model_menu = bar.addMenu("&Model")  # settings, model manager and import attach here
        self.view_menu = bar.addMenu("&View")

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
        c = self.controller
        c.modelStateChanged.connect(self._on_model_state)
        c.conversationsChanged.connect(self.refresh_conversations)
        c.conversationChanged.connect(self._on_conversation_changed)
        c.messageAdded.connect(self._on_message_added)
        c.streamText.connect(self._on_stream_text)
        c.generationStarted.connect(self._on_generation_started)
        c.generationFinished.connect(self._on_generation_finished)
        c.contextUsage.connect(self._on_context_usage)
        c.notice.connect(self.show_notice)
        s = self.sidebar
        s.selected.connect(self.open_conversation)
        s.newChatRequested.connect(self.new_chat)
        s.renameRequested.connect(self._rename)
        s.pinRequested.connect(self._pin)
        s.deleteRequested.connect(self.delete_conversation)
        s.undoRequested.connect(self._undo_delete)
        v = self.chat_view
        v.regenerateRequested.connect(c.regenerate)
        v.editSubmitted.connect(c.edit)
        v.deleteRequested.connect(c.delete_message)
        v.branchRequested.connect(c.switch_branch)
        self.composer.sendRequested.connect(self.send)
        self.composer.stopRequested.connect(self.stop)

    # ---------------------------------------------------------- conversations
    @Slot()
    def refresh_conversations(self) -> None:
        try:
            conversations = self.store.list_conversations()
        except StoreError as e:
            self.show_notice(e.message)
            return
        self.sidebar.set_conversations(conversations, self.current_id)
        self.sidebar.set_generating(self.controller.active.conversation_id if self.controller.active else None)

    @Slot(str)
    def open_conversation(self, conversation_id: str | None) -> None:
        """Show a conversation (None: a new, empty chat that is stored once the first message is sent)."""
        if conversation_id == self.current_id and conversation_id is not None:
            return
        self.current_id = conversation_id
        self.sidebar.select(conversation_id)
        self.chat_view.show_messages(self.controller.views(conversation_id) if conversation_id else [])
        self._update_title()
        self.status.meter.set_usage(0, self.controller._n_ctx() or 2048, 0)
        self.controller.request_usage(conversation_id)
        self._sync_composer()

    @Slot()
    def new_chat(self) -> None:
        self.open_conversation(None)
        self.composer.focus_input()

    def _update_title(self) -> None:
        title = ""
        if self.current_id:
            try:
                title = self.store.get_conversation(self.current_id).title
            except StoreError:
                title = ""
        self.setWindowTitle(f"{title} — TinyChat" if title else "TinyChat")

    @Slot(str, str)
    def _rename(self, conversation_id: str, title: str) -> None:
        try:
            self.store.rename(conversation_id, title)
        except StoreError as e:
            self.show_notice(e.message)
        self.refresh_conversations()
        self._update_title()

    @Slot(str, bool)
    def _pin(self, conversation_id: str, pinned: bool) -> None:
        try:
            self.store.set_pinned(conversation_id, pinned)
        except StoreError as e:
            self.show_notice(e.message)
        self.refresh_conversations()

    @Slot(str)
    def delete_conversation(self, conversation_id: str) -> None:
        """Move a conversation to the trash and offer Undo (it is purged at the next start)."""
        active = self.controller.active
        if active is not None and active.conversation_id == conversation_id:
            self.show_notice("This chat is still generating an answer. Stop it first (Esc), then delete it.")
            return
        try:
            title = self.store.get_conversation(conversation_id).title
            self.store.trash_conversation(conversation_id)
        except StoreError as e:
            self.show_notice(e.message)
            return
        if conversation_id == self.current_id:
            self.open_conversation(None)
        self.refresh_conversations()
        self.sidebar.offer_undo(conversation_id, title)

    @Slot(str)
    def _undo_delete(self, conversation_id: str) -> None:
        try:
            self.store.restore_conversation(conversation_id)
        except StoreError as e:
            self.show_notice(e.message)
            return
        self.refresh_conversations()
        self.open_conversation(conversation_id)

    @Slot()
    def rename_current(self) -> None:
        if self.current_id:
            self.sidebar.start_rename(self.current_id)

    @Slot()
    def delete_current(self) -> None:
        if self.current_id:
            self.delete_conversation(self.current_id)

    # ------------------------------------------------------------------- chat
    @Slot(str)
    def send(self, text: str) -> None:
        conv = self.controller.send(self.current_id, text)
        if conv is None:
            return  # refused: the text stays in the composer
        self.composer.clear()
        if conv != self.current_id:
            self.current_id = conv
            self.refresh_conversations()
            self._update_title()

    @Slot()
    def stop(self) -> None:
        self.controller.stop()

    @Slot()
    def regenerate_last(self) -> None:
        self.controller.regenerate_last(self.current_id)

    @Slot(str, object)
    def _on_message_added(self, conversation_id: str, view: MessageView) -> None:
        if conversation_id == self.current_id:
            self.chat_view.append_message(view)
            self.chat_view.scroll_to_bottom()
        elif self.current_id is None:
            self.open_conversation(conversation_id)

    @Slot(str)
    def _on_conversation_changed(self, conversation_id: str) -> None:
        if conversation_id == self.current_id:
            self.chat_view.show_messages(self.controller.views(conversation_id))

    @Slot(str, str, str)
    def _on_stream_text(self, conversation_id: str, message_id: str, text: str) -> None:
        if conversation_id == self.current_id:
            self.chat_view.stream(message_id, text)

    @Slot(str, str)
    def _on_generation_started(self, conversation_id: str, _message_id: str) -> None:
        self.sidebar.set_generating(conversation_id)
        self._sync_composer()

    @Slot(str, object, object)
    def _on_generation_finished(self, conversation_id: str, final: StoredMessage | None,
                                stats: GenerationStats | None) -> None:
        self.sidebar.set_generating(None)
        self.status.set_stats(stats)
        if conversation_id == self.current_id and final is not None:
            self.chat_view.flush_stream()
            view = next((v for v in self.controller.views(conversation_id) if v.message.id == final.id), None)
            self.chat_view.update_message(view or MessageView(final))
        self._sync_composer()

    @Slot(str, object)
    def _on_context_usage(self, conversation_id: str, usage: ContextUsage) -> None:
        if conversation_id != self.current_id:
            return
        forgotten = self.controller.forgotten.get(conversation_id, set())
        self.status.meter.set_usage(usage.tokens, usage.n_ctx, len(forgotten))
        for mid in self.chat_view.message_ids():
            w = self.chat_view.message_widget(mid)
            if w is not None and w.view.forgotten != (mid in forgotten):
                w.set_view(replace(w.view, forgotten=mid in forgotten))
        if usage.overflow:
            self.show_notice(usage.overflow)

    # ------------------------------------------------------------------ model
    @Slot(str, str)
    def _on_model_state(self, state: str, text: str) -> None:
        loaded = self.controller.model.loaded
        if state == "ready" and loaded is not None:
            m = loaded.model
            self.status.set_model(loaded.engine_name, m.label or m.path.name, m.quant, loaded.report.chat_format)
            self.controller.request_usage(self.current_id)
        else:
            self.status.set_model_text(text)
            self.status.meter.clear()
        self._sync_composer()

    def _sync_composer(self) -> None:
        state = self.controller.model
        reason = None
        if state.state == "loading":
            reason = state.text
        elif state.state in ("none", "failed"):
            reason = state.text or "No model loaded."
        self.composer.set_blocked(reason)
        self.composer.set_generating(self.controller.generating)
        self.stop_action.setEnabled(self.controller.generating)
        self.chat_view.set_empty_hint(
            reason or "Ask anything. TinyLlama runs entirely on this computer — nothing you type leaves it.")

    @Slot(object)
    def apply_system_theme(self, _scheme: object = None) -> None:
        """Re-apply the palette after the desktop switched light/dark, and redraw the chat with it."""
        app = QApplication.instance()
        if isinstance(app, QApplication):
            theme.apply(app, self.settings.theme, self.settings.font_size)
            if self.current_id:
                self.chat_view.show_messages(self.controller.views(self.current_id))

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
                    self.open_conversation(last)
            except StoreError:
                pass  # deleted since: start with a new chat

    def save_state(self) -> None:
        qs = QSettings(str(self.state_file), QSettings.Format.IniFormat)
        qs.setValue("window/geometry", self.saveGeometry())
        qs.setValue("window/splitter", self.splitter.saveState())
        qs.setValue("chat/last_conversation", self.current_id or "")
        qs.sync()

    def closeEvent(self, event: QCloseEvent) -> None:
        """Save the window, stop any answer (kept as partial) and join the engine thread."""
        if not self._closed:
            self._closed = True
            self.save_state()
            self.controller.shutdown()
            keeper = self.controller.keeper
            while len(keeper) and ask_to_retry(self, len(keeper)):  # a full disk must not eat an answer
                keeper.stop()
        event.accept()
