"""First run: shown instead of the chat while no model is installed. Says what TinyChat is in two
sentences, offers the recommended download (or to resume one a previous run paused) or a model file the
user already has, shows the download inline with Cancel, and on failure says what happened with only
the actions that fit it: a failed download becomes "Retry download", a refused file leaves both choices.
`ready` fires once a model was installed and handed to the engine; the main window then opens a chat."""

from __future__ import annotations

import html
from pathlib import Path

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import QFileDialog, QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from app.background.download_worker import JobProgress
from app.models.download_panel import DownloadPanel, kept_bytes
from app.models.import_choice import ask_in_place
from app.models.model_switcher import ModelSwitcher
from app.ui import panel_style, theme
from engine.catalog import CatalogEntry, CatalogError
from engine.download import human
from engine.select import choose_engine

INTRO = ("TinyChat is a private chat assistant that runs a small language model, TinyLlama, entirely on this "
         "computer. Nothing you type ever leaves it, and once the model is here it works without an internet "
         "connection.")
GGUF_FILTER = "GGUF model files (*.gguf);;All files (*)"
IMPORT_HINT = "If you already have the model as a .gguf file, choose “Use a model file I have…”."


def choose_gguf_file(parent: QWidget, title: str) -> Path | None:
    """Ask the user for a GGUF model file (starting in their home folder); None if they cancel."""
    path, _ = QFileDialog.getOpenFileName(parent, title, str(Path.home()), GGUF_FILTER)
    return Path(path) if path else None


def model_name(entry: CatalogEntry) -> str:
    """The model's name without its level: "TinyLlama 1.1B Chat v0.4"."""
    return entry.label.split(" · ")[0]


def download_label(entry: CatalogEntry) -> str:
    """The first-run button: "Download TinyLlama 1.1B Chat v0.4 (Q4_K_M, 668 MB)"; for a level made from
    the original weights, what is downloaded is the original: "(MLX 4-bit, about 4.4 GB download)"."""
    if entry.needs_conversion:
        return (f"Download {model_name(entry)} (MLX {entry.bits}-bit, about "
                f"{human((entry.download_mb or entry.size_mb) * 1_000_000)} download)")
    return f"Download {model_name(entry)} ({entry.level}, {human(entry.size_mb * 1_000_000)})"


class WelcomeView(QWidget):
    """The first-run page. Buttons: `download_button` (download, resume or retry) and `import_button`."""

    ready = Signal(object)  # InstalledModel

    def __init__(self, switcher: ModelSwitcher, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("WelcomeView")
        self.setStyleSheet(panel_style.style_sheet())
        self.switcher = switcher
        self.entry = self._recommended()

        card = QFrame(self)
        card.setObjectName("WelcomeCard")
        # Up to 580 px wide, narrower in a narrow window; the wrapped labels then take more lines.
        card.setMinimumWidth(280)
        card.setMaximumWidth(580)
        title = QLabel("Welcome to TinyChat", card)
        title.setObjectName("WelcomeTitle")
        font = title.font()
        font.setPointSizeF(font.pointSizeF() * 1.8)
        font.setBold(True)
        title.setFont(font)
        self.intro = QLabel(INTRO, card)
        self.intro.setWordWrap(True)

        self.download_button = QPushButton(self._download_text(), card)
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
        self.error_hint = QLabel(IMPORT_HINT, card)
        self.error_hint.setWordWrap(True)
        self.error_hint.hide()
        self._importing = False  # what the last job was: a refused file needs no download advice

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
        lay.addWidget(self.note)
        # Centred with stretches, not an alignment flag: an aligned widget loses height-for-width, and
        # the wrapped labels would be cut off.
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(card, 100)  # takes the room first (up to its 580 px), the stretches share the rest
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

    def _download_text(self) -> str:
        """The main button: the recommended download, or resuming the one a previous run paused."""
        if self.entry is None:
            return "Download a model"
        kept = kept_bytes(self.switcher.manager, self.entry)
        if kept:
            return f"Resume download ({human(kept)} of {human(self.entry.size_mb * 1_000_000)} already here)"
        return download_label(self.entry)

    def _note_text(self) -> str:
        text = "You can switch to a smaller or more accurate level of the model later in Settings."
        if self.entry is not None and self.entry.needs_conversion:
            text = (f"TinyChat downloads the original weights (about "
                    f"{human((self.entry.download_mb or 0) * 1_000_000)}) once, keeps them to make other "
                    "levels, and converts them to MLX on this computer. " + text)
        return text

    # ---------------------------------------------------------------- actions
    @Slot()
    def start_download(self) -> None:
        if self.entry is None:
            return
        self._importing = False
        self._busy(f"Getting {model_name(self.entry)} ({self.entry.level})")
        self.switcher.choose(self.entry.model, self.entry.level)

    def import_path(self, path: Path, in_place: bool = False) -> None:
        """Validate and use a model file the user picked (copied, or `in_place` used where it is)."""
        self._importing = True
        self._busy(f"Checking {Path(path).name}")
        self.switcher.import_file(Path(path), in_place)

    @Slot()
    def _choose_file(self) -> None:
        path = choose_gguf_file(self, "Choose a model file")
        if path is not None:
            in_place = ask_in_place(path, self)
            if in_place is not None:
                self.import_path(path, in_place)

    def _busy(self, title: str) -> None:
        self.error.hide()
        self.error_hint.hide()
        self.download_button.setEnabled(False)
        self.import_button.setEnabled(False)
        self.panel.begin(title)

    def _idle(self) -> None:
        self.panel.hide()
        self.download_button.setText(self._download_text())
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
        if self._importing:
            self.show_error("This file can't be used.", message)
        else:
            self.download_button.setText("Retry download")
            self.show_error("The model could not be downloaded.", message, IMPORT_HINT)

    @Slot(str)
    def _on_cancelled(self, _message: str) -> None:
        self._idle()
        if not self._importing:
            self.error.setText("Download paused. What was downloaded is kept; resuming continues from there.")
            self.error.setStyleSheet("")
            self.error.show()

    def show_error(self, title: str, message: str, hint: str = "") -> None:
        """Say what went wrong and what to do (`message` is the engine's sentence), with an optional hint."""
        color = theme.current().error
        self.error.setText(f"<span style='color:{color}'><b>{html.escape(title)}</b></span><br>{html.escape(message)}")
        self.error.setStyleSheet("")
        self.error.show()
        self.error_hint.setVisible(bool(hint))
        self.error_hint.setText(hint)

    def error_text(self) -> str:
        """What the error area says (empty when it is hidden)."""
        if self.error.isHidden():
            return ""
        return self.error.text() + ("\n" + self.error_hint.text() if not self.error_hint.isHidden() else "")
