"""What the main window shows of the network: the status-bar summary (a button that opens the Network
page), Help ▸ Network…, the airplane-mode switch shared by that page and Settings, and the question a
download asks while airplane mode is on ("Download once" or keep it refused).

The log is written from whichever thread opened a socket; the GUI reads it on a 500 ms timer (a
version counter), so nothing Qt ever runs inside the audit hook.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from urllib.parse import urlsplit

from PySide6.QtCore import QObject, Qt, QTimer, Slot
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMenu, QMessageBox, QWidget

from app.core import network_report, paths
from app.core.settings import Settings
from app.models.model_switcher import ModelSwitcher
from app.shell.network_dialog import NetworkDialog
from app.ui.elided_button import ElidedButton
from engine import network_log
from engine.catalog import CatalogEntry
from engine.hub import hub_endpoint
from engine.progress import human

log = logging.getLogger(__name__)
POLL_MS = 500
DOWNLOAD_ONCE = "Download once"
KEEP_OFFLINE = "Keep airplane mode"


class NetworkActions(QObject):
    """The network pieces of one main window (`window` needs `status` and `show_notice`)."""

    def __init__(self, window: QWidget, switcher: ModelSwitcher, help_menu: QMenu) -> None:
        super().__init__(window)
        self.window = window
        self.switcher = switcher
        network_log.install()  # app/__main__ installs it first; tests that build the window get it here
        network_log.set_airplane(switcher.settings.current.airplane_mode)
        switcher.settings.changed.connect(self._on_settings)  # Settings' switch, the page's, or any other
        self.log_file = network_report.keep_on_disk(paths.log_dir())
        self.dialog: NetworkDialog | None = None
        self.status_button = ElidedButton(window)  # a long session's summary must not hold the window wide
        self.status_button.setObjectName("NetworkStatus")
        self.status_button.setFlat(True)
        self.status_button.setAccessibleDescription("Network activity")  # its name is the summary it shows
        self.status_button.setToolTip("Every network connection TinyChat attempted since it started. Click for "
                                      "the details and the airplane-mode switch.")
        self.status_button.clicked.connect(self.open_dialog)
        window.status.addPermanentWidget(self.status_button)  # type: ignore[attr-defined]
        self.menu_action = QAction("&Network…", window)
        self.menu_action.triggered.connect(self.open_dialog)
        help_menu.addAction(self.menu_action)
        switcher.downloads.confirm_network = self.confirm_download
        self._seen: tuple[int, bool] | None = None
        self._timer = QTimer(self)
        self._timer.setInterval(POLL_MS)
        self._timer.timeout.connect(self.poll)
        self._timer.start()
        self.poll()

    @Slot()
    def poll(self) -> None:
        """Update the status bar and the open Network page when the log or airplane mode changed."""
        now = (network_log.LOG.version, network_log.airplane())
        if now == self._seen:
            return
        self._seen = now
        self.status_button.setText(network_report.summary(network_log.LOG.attempts(), now[1]))
        if self.dialog is not None:
            self.dialog.refresh()

    @Slot()
    def open_dialog(self) -> NetworkDialog:
        if self.dialog is None:
            self.dialog = NetworkDialog(self.set_airplane, self.log_file, self.window)
        self.dialog.refresh()
        self.dialog.show()
        self.dialog.raise_()
        return self.dialog

    @Slot(bool)
    def set_airplane(self, on: bool) -> None:
        """Switch airplane mode now and remember it in the settings."""
        error = self.switcher.settings.apply(replace(self.switcher.settings.current, airplane_mode=on))
        if error:  # in force now, just not remembered
            self.window.show_notice(error)  # type: ignore[attr-defined]

    @Slot(object, object)
    def _on_settings(self, old: Settings, new: Settings) -> None:
        if old.airplane_mode != new.airplane_mode:
            network_log.set_airplane(new.airplane_mode)
            self.poll()

    def confirm_download(self, entry: CatalogEntry) -> bool:
        """Asked (on the GUI thread) before a download while airplane mode is on: True lets this one
        download go online; airplane mode stays on for everything else."""
        host = urlsplit(hub_endpoint()).netloc or "the model hub"
        box = QMessageBox(QMessageBox.Icon.Question, "Airplane mode is on",
                          f"Airplane mode is on, so TinyChat does not connect to the internet.\n\nDownloading "
                          f"{entry.label} ({human(entry.size_mb * 1_000_000)}) needs a connection to the model "
                          f"hub ({host}). Go online for this one download? Airplane mode stays on for "
                          "everything else.", QMessageBox.StandardButton.NoButton, self.window)
        box.setObjectName("AirplaneQuestion")
        once = box.addButton(DOWNLOAD_ONCE, QMessageBox.ButtonRole.AcceptRole)
        keep = box.addButton(KEEP_OFFLINE, QMessageBox.ButtonRole.RejectRole)
        box.setDefaultButton(keep)
        box.setWindowModality(Qt.WindowModality.WindowModal)
        box.exec()
        allowed = box.clickedButton() is once
        log.info("airplane mode: download of %s %s", entry.label, "allowed once" if allowed else "refused")
        return allowed
