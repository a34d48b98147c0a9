"""First run: shown instead of the chat while no model is installed. Says what TinyChat is in two
sentences, offers the recommended download (or a model file the user already has), shows the download
inline with Cancel, and on failure explains what happened with Retry and the import path still there.
`ready` fires once a model was installed and handed to the engine; the main window then opens a chat."""

from __future__ import annotations

import html
from pathlib import Path

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import QFileDialog, QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from app.background.download_worker import JobProgress
from app.models.download_panel import DownloadPanel
from app.models.model_switcher import ModelSwitcher
from app.ui import panel_style, theme
from engine.catalog import CatalogEntry, CatalogError
from engine.download import human
from engine.select import choose_engine

INTRO = ("TinyChat is a private chat assistant that runs a small language model, TinyLlama, entirely on this "
         "computer. Nothing you type ever leaves it, and once the model is here it works without an internet "
         "connection.")
GGUF_FILTER = "GGUF model files (*.gguf);;All files (*)"


def model_name(entry: CatalogEntry) -> str:
    """The model's name without its level: "TinyLlama 1.1B Chat v0.4"."""
    return entry.label.split(" · ")[0]


def download_label(entry: CatalogEntry) -> str:
    """The first-run button: "Download TinyLlama 1.1B Chat v0.4 (Q4_K_M, 668 MB)"."""
    level = f"MLX {entry.bits}-bit" if entry.engine == "mlx" else entry.level
    return f"Download {model_name(entry)} ({level}, {human(entry.size_mb * 1_000_000)})"


class WelcomeView(QWidget):
    """The first-run page. Buttons: `download_button`, `import_button`, `retry_button`."""

    ready = Signal(object)  # InstalledModel

    def __init__(self, switcher: ModelSwitcher, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("WelcomeView")
        self.setStyleSheet(panel_style.style_sheet())
        self.switcher = switcher
        self.entry = self._recommended()

        card = QFrame(self)
        card.setObjectName("WelcomeCard")
        card.setFixedWidth(580)  # a fixed width lets the wrapped labels compute their full height
        title = QLabel("Welcome to TinyChat", card)
        title.setObjectName("WelcomeTitle")
        font = title.font()
        font.setPointSizeF(font.pointSizeF() * 1.8)
        font.setBold(True)
        title.setFont(font)
        self.intro = QLabel(INTRO, card)
        self.intro.setWordWrap(True)

        self.download_button = QPushButton(download_label(self.entry) if self.entry else "Download a model", card)
        self.download_button.setObjectName("PrimaryButton")
        self.download_button.setDefault(True)
        self.download_button.setMinimumHeight(40)
        self.download_button.clicked.connect(self.start_download)
        self.download_button.setEnabled(self.entry is not None)
        self.import_button = QPushButton("Use a model file I have…", card)
        self.import_button.setMinimumHeight(34)
        self.import_button.clicked.connect(self._choose_file)
        self.note = QLabel(self._note_text(), card)
        self.note.setObjectName("Muted")
        self.note.setWordWrap(True)

        self.panel = DownloadPanel(card)
        self.panel.cancelRequested.connect(self.switcher.cancel)
        self.panel.hide()
        self.error = QLabel(card)
        self.error.setWordWrap(True)
        self.error.setTextFormat(Qt.TextFormat.RichText)
        self.error.hide()
        self.error_hint = QLabel("If this computer is offline, connect it and press Retry: the download "
                                 "continues where it stopped. If you already have the model as a .gguf file, "
                                 "choose “Use a model file I have…”.", card)
        self.error_hint.setWordWrap(True)
        self.error_hint.hide()
        self.retry_button = QPushButton("Retry", card)
        self.retry_button.clicked.connect(self.start_download)
        self.retry_button.hide()

        lay = QVBoxLayout(card)
        lay.setSpacing(12)
        lay.addWidget(title)
        lay.addWidget(self.intro)
        lay.addSpacing(8)
        lay.addWidget(self.download_button)
        lay.addWidget(self.import_button)
        lay.addWidget(self.panel)
        lay.addWidget(self.error)
        lay.addWidget(self.error_hint)
        lay.addWidget(self.retry_button)
        lay.addWidget(self.note)
        # Centred with stretches, not an alignment flag: an aligned widget loses height-for-width, and
        # the wrapped labels would be cut off.
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(card)
        row.addStretch(1)
        outer = QVBoxLayout(self)
        outer.addStretch(1)
        outer.addLayout(row)
        outer.addStretch(2)

        switcher.progress.connect(self._on_progress)
        switcher.switched.connect(self._on_switched)
        switcher.failed.connect(self._on_failed)
        switcher.cancelled.connect(self._on_cancelled)

    def _recommended(self) -> CatalogEntry | None:
        settings = self.switcher.settings.current
        catalog = self.switcher.manager.catalog
        engine = choose_engine(settings.engine).name
        for model in (settings.model_id, *catalog.models()):
            try:
                return catalog.default(model, engine)
            except CatalogError:
                continue
        return None

    def _note_text(self) -> str:
        text = "You can switch to a smaller or more accurate level of the model later in Settings."
        if self.entry is not None and self.entry.needs_conversion:
            text = (f"On Apple Silicon TinyChat downloads the original weights "
                    f"({human((self.entry.download_mb or 0) * 1_000_000)}) once and converts them to MLX "
                    "on this Mac. " + text)
        return text

    # ---------------------------------------------------------------- actions
    @Slot()
    def start_download(self) -> None:
        if self.entry is None:
            return
        self._busy(f"Getting {model_name(self.entry)} ({self.entry.level})")
        self.switcher.choose(self.entry.model, self.entry.level)

    def import_path(self, path: Path) -> None:
        """Validate and use a model file the user picked."""
        self._busy(f"Checking {Path(path).name}")
        self.switcher.import_file(Path(path))

    @Slot()
    def _choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose a model file", str(Path.home()), GGUF_FILTER)
        if path:
            self.import_path(Path(path))

    def _busy(self, title: str) -> None:
        self.error.hide()
        self.error_hint.hide()
        self.retry_button.hide()
        self.download_button.setEnabled(False)
        self.import_button.setEnabled(False)
        self.panel.begin(title)

    def _idle(self) -> None:
        self.panel.hide()
        self.download_button.setEnabled(self.entry is not None)
        self.import_button.setEnabled(True)

    @Slot(object)
    def _on_progress(self, p: JobProgress) -> None:
        self.panel.set_progress(p.progress)

    @Slot(object)
    def _on_switched(self, model: object) -> None:
        self._idle()
        self.ready.emit(model)

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        self._idle()
        self.show_error(message)

    @Slot(str)
    def _on_cancelled(self, _message: str) -> None:
        self._idle()
        self.download_button.setText("Resume download")
        self.error.setText("Download paused. What was downloaded is kept; resuming continues from there.")
        self.error.setStyleSheet("")
        self.error.show()

    def show_error(self, message: str) -> None:
        """Say what went wrong and what to do; Retry and the import path stay available."""
        color = theme.current().error
        self.error.setText(
            f"<span style='color:{color}'><b>The model could not be set up.</b></span><br>{html.escape(message)}")
        self.error.setStyleSheet("")
        self.error.show()
        self.error_hint.show()
        self.retry_button.show()

    def error_text(self) -> str:
        """What the error area says (empty when it is hidden)."""
        if self.error.isHidden():
            return ""
        return self.error.text() + ("\n" + self.error_hint.text() if not self.error_hint.isHidden() else "")
