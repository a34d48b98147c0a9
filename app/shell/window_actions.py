"""Adds to the main window what lies around the chat: Settings (with the quantization switch), the
model manager, Search (Ctrl+F), export/import, the sidebar toggle, Help (user guide, keyboard shortcuts,
About), and the first-run welcome page.

`install(window)` is called once after the window is built. It owns the download thread and the
ModelSwitcher, and stops the thread when the window closes (an event filter, so the window's own
close handling stays as it is). Everything here acts through the window's Session, like the window.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from PySide6.QtCore import QEvent, QObject, Qt, Slot
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMenu

from app.background.download_worker import DownloadThread
from app.chat.model_state import ModelStatus
from app.chat.search_dialog import SearchDialog
from app.core import paths
from app.models.model_dialog import ModelDialog
from app.models.model_switcher import ModelSwitcher
from app.models.welcome_view import WelcomeView, choose_gguf_file
from app.shell.about_dialog import AboutDialog
from app.shell.help_windows import GuideWindow, ShortcutsDialog, shortcut_rows
from app.shell.network_actions import NetworkActions
from app.shell.server_switch import ServerSwitch
from app.shell.settings_dialog import SettingsDialog
from app.shell.sidebar_toggle import SidebarToggle
from app.shell.transfer_actions import TransferActions
from engine.models import InstalledModel, ModelManager

log = logging.getLogger(__name__)


class WindowActions(QObject):
    """The menus, dialogs and welcome page added to one MainWindow (typed loosely to avoid a cycle)."""

    def __init__(self, window, manager_factory: Callable[[], ModelManager] | None = None) -> None:
        super().__init__(window)
        self.window = window
        self.session = session = window.session
        self.downloads = DownloadThread(manager_factory or (lambda: ModelManager(paths.models_dir())))
        self.switcher = ModelSwitcher(session.settings, session.model, self.downloads)
        self.switcher.notice.connect(window.show_notice)
        self.transfer = TransferActions(window.store, window, lambda: session.open_id, window.show_notice,
                                        session.refresh_conversations)
        self.server = ServerSwitch(window)  # "Serve on this computer", on the window's engine thread
        self.settings_dialog: SettingsDialog | None = None
        self.model_dialog: ModelDialog | None = None
        self.sidebar_toggle = SidebarToggle(window, window.splitter, window.sidebar, window.state_file)
        self.welcome = WelcomeView(self.switcher, window)
        self.welcome.ready.connect(self._on_first_model_ready)
        window.pages.addWidget(self.welcome)
        self._add_menus()
        window.installEventFilter(self)
        window.sidebar.selected.connect(self._show_chat_page)
        self.switcher.failed.connect(self._on_switch_failed)
        self._focus_when_ready = False
        # Connected after the window's own handler, so the composer is already enabled when this runs.
        session.modelChanged.connect(self._on_model_state)
        if session.model.status.state == "none" and self.switcher.manager.installed() == ():
            self.show_welcome()

    # ------------------------------------------------------------------ menus
    def _add_menus(self) -> None:
        w = self.window
        file_menu: QMenu = w.file_menu
        first = w.file_extras  # after "New chat", before Close and Quit
        self.search_action = self._action("&Search conversations…", QKeySequence.StandardKey.Find, self.search)
        export_menu = QMenu("&Export", w)
        self.export_current_action = self._action("This chat…", QKeySequence("Ctrl+E"),
                                                  self.transfer.export_current)
        export_menu.addAction(self.export_current_action)
        export_menu.addAction(self._action("All chats…", None, self.transfer.export_all))
        self.import_conversations_action = self._action("&Import conversations…", None, self.transfer.import_file)
        file_menu.insertAction(first, self.search_action)
        file_menu.insertSeparator(first)
        file_menu.insertMenu(first, export_menu)
        file_menu.insertAction(first, self.import_conversations_action)

        m: QMenu = w.model_menu
        self.settings_action = self._action("&Settings…", QKeySequence.StandardKey.Preferences,
                                            lambda: self.open_settings())
        if not self.settings_action.shortcuts():
            self.settings_action.setShortcut(QKeySequence("Ctrl+,"))
        self.settings_action.setMenuRole(QAction.MenuRole.PreferencesRole)
        m.addAction(self.settings_action)
        m.addAction(self._action("&Quantization level…", None, lambda: self.open_settings("Model")))
        m.addAction(self._action("&Models…", QKeySequence("Ctrl+Shift+M"), self.open_models))
        m.addAction(self._action("Use a &GGUF file…", None, self.import_model))

        w.view_menu.addSeparator()
        w.view_menu.addAction(self.sidebar_toggle.action)

        w.help_menu.addAction(self._action("&User guide", QKeySequence.StandardKey.HelpContents, self.open_guide))
        w.help_menu.addAction(self._action("&Keyboard shortcuts", None, self.open_shortcuts))
        self.network = NetworkActions(w, self.switcher, w.help_menu)  # Help ▸ Network…, status bar, airplane mode
        w.help_menu.addSeparator()
        about = self._action("&About TinyChat", None, self.open_about)
        about.setMenuRole(QAction.MenuRole.AboutRole)
        w.help_menu.addAction(about)

    def _action(self, text: str, key: QKeySequence | QKeySequence.StandardKey | None,
                slot: Callable[[], object]) -> QAction:
        action = QAction(text, self.window)
        if isinstance(key, QKeySequence.StandardKey):
            action.setShortcuts(key)
        elif key is not None:
            action.setShortcut(key)
        action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        action.triggered.connect(slot)
        return action

    # ---------------------------------------------------------------- dialogs
    def open_settings(self, page: str = "Model") -> SettingsDialog:
        if self.settings_dialog is None:
            self.settings_dialog = SettingsDialog(self.switcher, self.window)
        self.settings_dialog.show_page(page)
        self.settings_dialog.show()
        self.settings_dialog.raise_()
        return self.settings_dialog

    @Slot()
    def open_models(self) -> ModelDialog:
        if self.model_dialog is None:
            self.model_dialog = ModelDialog(self.switcher, self.window)
        self.model_dialog.refresh()
        self.model_dialog.show()
        self.model_dialog.raise_()
        return self.model_dialog

    @Slot()
    def import_model(self) -> None:
        path = choose_gguf_file(self.window, "Use a GGUF model file")
        if path is not None:
            self.open_models().ask_and_import(path)

    @Slot()
    def open_about(self) -> AboutDialog:
        dialog = AboutDialog(self.session, self.window)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.show()
        return dialog

    @Slot()
    def open_guide(self) -> GuideWindow:
        dialog = GuideWindow(self.window)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.show()
        return dialog

    @Slot()
    def open_shortcuts(self) -> ShortcutsDialog:
        dialog = ShortcutsDialog(shortcut_rows(self.window.menuBar()), self.window)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.show()
        return dialog

    @Slot()
    def search(self) -> SearchDialog:
        dialog = SearchDialog(self.window.store, self.window)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.openRequested.connect(self.open_message)
        dialog.show()
        dialog.query.setFocus()
        return dialog

    @Slot(str, str)
    def open_message(self, conversation_id: str, message_id: str) -> None:
        """Open a conversation on the branch holding `message_id`, with that message in view."""
        self._show_chat_page()
        self.session.open_message(conversation_id, message_id)

    # -------------------------------------------------------------- first run
    def show_welcome(self) -> None:
        self.window.pages.setCurrentWidget(self.welcome)
        self.welcome.download_button.setFocus()

    @Slot()
    @Slot(str)
    def _show_chat_page(self, _conversation_id: str = "") -> None:
        """Opening a conversation (sidebar, search) shows it even before a model is installed."""
        self.window.pages.setCurrentIndex(0)

    @Slot(object)
    def _on_first_model_ready(self, _model: InstalledModel) -> None:
        """The welcome page got a model: show the chat. A switch made anywhere else changes nothing here."""
        if self.window.pages.currentWidget() is not self.welcome:
            return
        self.window.pages.setCurrentIndex(0)
        # The composer is disabled while the model loads and a disabled box cannot take the focus:
        # give it the focus once the model is ready, so the user can type straight away.
        self._focus_when_ready = True
        self._on_model_state(self.session.model.status)

    @Slot(object)
    def _on_model_state(self, status: ModelStatus) -> None:
        if self._focus_when_ready and status.state in ("ready", "failed"):
            self._focus_when_ready = False
            self.window.composer.focus_input()

    @Slot(str)
    def _on_switch_failed(self, message: str) -> None:
        if self.window.pages.currentWidget() is not self.welcome:
            self.window.show_notice(message)

    # --------------------------------------------------------------- shutdown
    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.window and event.type() == QEvent.Type.Close:
            self.downloads.shutdown()  # a running download stops; its bytes stay for the next start
            self.transfer.shutdown()  # a running import rolls back, a running export leaves no file
        return super().eventFilter(watched, event)


def install(window, manager_factory: Callable[[], ModelManager] | None = None) -> WindowActions:
    """Add the settings, models, search, export/import, about and first-run pieces to `window`."""
    return WindowActions(window, manager_factory)
