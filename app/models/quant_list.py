"""The quantization switch: every level of the model with its size on disk, the memory it needs, a
quality/speed note and whether it is installed. Clicking an installed level switches to it at once
(the engine reloads in the background, the chat stays open); clicking one that is not installed offers
to download it, shows the progress inline with Cancel, and switches when it is ready."""

from __future__ import annotations

import html
from collections.abc import Callable

from PySide6.QtCore import QSize, Qt, Signal, Slot
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.background.download_worker import JobProgress
from app.core.level_advice import Advice, agreement_text, memory_needed
from app.models.download_panel import DownloadPanel, kept_bytes
from app.models.level_words import level_note, recommended
from app.models.model_switcher import ModelSwitcher, levels_for
from app.ui import theme
from engine.catalog import CatalogEntry
from engine.download import human
from engine.level_bench import LevelFigures
from engine.level_report import describe
from engine.models import InstalledModel

COLUMNS = ("Level", "On disk", "Memory", "Quality and speed", "Status", "Measured here")
MEASURED = 5
ROLE_ENTRY = Qt.ItemDataRole.UserRole


def size_text(entry: CatalogEntry, installed_bytes: int | None) -> str:
    """What the level takes on disk: the real size when installed, the catalog's figure otherwise."""
    if installed_bytes is not None:
        return human(installed_bytes)
    return human(entry.size_mb * 1_000_000)


def show_measured(item: QTreeWidgetItem, figures: LevelFigures | None, installed: bool) -> None:
    """The level's figures from this computer in two short lines; every figure in the tooltip."""
    if figures is None:
        item.setText(MEASURED, "Not measured yet" if installed else "")
        return
    memory = memory_needed(figures)
    item.setText(MEASURED, f"{figures.speed.gen_tps:.1f} tokens/s · {human(memory) if memory else '?'}\n"
                           f"{agreement_text(figures)}")
    item.setToolTip(MEASURED, describe(figures))


MEASURED_PICK = "Recommended for this computer: measured here (see Measured on this computer below)"


class QuantList(QWidget):
    """The level table plus the inline download offer. `levelChosen` fires when a switch starts."""

    levelChosen = Signal(str)  # level

    def __init__(self, switcher: ModelSwitcher, parent: QWidget | None = None,
                 figures: Callable[[], dict[str, LevelFigures]] | None = None,
                 advice: Callable[[], Advice] | None = None) -> None:
        super().__init__(parent)
        self.switcher = switcher
        self._figures = figures or dict  # figures measured here, by installed id
        self._advice = advice  # the level measured best here, once levels are measured
        self.tree = QTreeWidget(self)
        self.tree.setObjectName("QuantList")
        self.tree.setAccessibleName("Quantization levels")
        self.tree.setColumnCount(len(COLUMNS))
        self.tree.setHeaderLabels(COLUMNS)
        self.tree.setRootIsDecorated(False)
        self.tree.setUniformRowHeights(False)  # the quality/speed note wraps onto a second line
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.tree.setWordWrap(True)
        self.tree.setTextElideMode(Qt.TextElideMode.ElideNone)
        header = self.tree.header()
        header.setStretchLastSection(False)
        for col in (0, 1, 2, 4, MEASURED):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        self.tree.itemClicked.connect(self._on_clicked)
        self.tree.itemActivated.connect(self._on_clicked)

        self.offer = QLabel(self)
        self.offer.setWordWrap(True)
        self.offer_button = QPushButton(self)
        self.offer_button.setDefault(False)
        self.offer_button.setAutoDefault(False)
        self.offer_button.clicked.connect(self._download_offered)
        offer_row = QHBoxLayout()
        offer_row.addWidget(self.offer, 1)
        offer_row.addWidget(self.offer_button)
        self.panel = DownloadPanel(self)
        self.panel.cancelRequested.connect(self._on_cancel)
        self.panel.hide()

        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.tree, 1)
        lay.addLayout(offer_row)
        lay.addWidget(self.panel)

        self._offered: CatalogEntry | None = None
        self._downloading: CatalogEntry | None = None
        self._phase = ""  # of the running download: "converting" once an MLX level is being made
        self._sizes: dict[str, int] = {}  # entry id → bytes getting it would download, as the Hub said
        switcher.downloads.sizeKnown.connect(self._on_size)
        switcher.progress.connect(self._on_progress)
        switcher.switched.connect(self._on_switched)
        switcher.failed.connect(self._on_failed)
        switcher.cancelled.connect(self._on_cancelled)
        switcher.model.changed.connect(self._on_model_state)
        self._set_offer(None, "")
        self.refresh()

    # ------------------------------------------------------------------ state
    def entries(self) -> tuple[CatalogEntry, ...]:
        return levels_for(self.switcher.manager, self.switcher.settings.current)

    def refresh(self) -> None:
        """Rebuild the rows from what is on disk now."""
        manager = self.switcher.manager
        partial = {u.id: u.bytes for u in manager.disk_usage() if u.state == "partial"}
        model_state = self.switcher.model.status.state
        current = self.switcher.in_use()
        selected = self._offered.id if self._offered else None
        figures = self._figures()
        # One star: the level measured best on this computer once there is one, else the catalog's choice.
        measured_pick = self._advice().level if self._advice is not None and figures else None
        self.tree.clear()
        for entry in self.entries():
            installed = manager.find(entry.model, entry.level)
            in_use = installed is not None and current is not None and current.id == installed.id
            if in_use:
                status = "Loading…" if model_state == "loading" else "● In use"
            elif self._downloading is not None and self._downloading.id == entry.id:
                status = "Converting…" if self._phase == "converting" else "Downloading…"
            elif installed is not None:
                status = "Installed"
            elif entry.id in partial or (entry.source_id and entry.source_id in partial):
                status = f"Paused ({human(partial.get(entry.id) or partial.get(entry.source_id or '', 0))})"
            else:
                status = "Not downloaded"
            starred = entry.level == measured_pick if measured_pick else recommended(entry)
            level = entry.level + (" ★" if starred else "")
            note = level_note(entry)
            if entry.needs_conversion and installed is None:
                note += (" Made here from the original weights kept on this computer (no download)."
                         if self._source_kept(entry) else
                         f" Converted here from the original ({self._download_figure(entry)} download, once for "
                         "all levels).")
            item = QTreeWidgetItem([level, size_text(entry, installed.size_bytes if installed else None),
                                    human(entry.memory_mb * 1_000_000), note, status])
            item.setData(0, ROLE_ENTRY, entry.id)
            show_measured(item, figures.get(installed.id) if installed is not None else None,
                          installed is not None)
            item.setToolTip(3, note)
            if starred:
                item.setToolTip(0, MEASURED_PICK if measured_pick else "Recommended")
            # Room for two lines: the view wraps the note instead of cutting it off.
            item.setSizeHint(3, QSize(200, 2 * self.tree.fontMetrics().lineSpacing() + 6))
            if in_use:
                bold = QFont(item.font(0))
                bold.setBold(True)
                for col in range(len(COLUMNS)):
                    item.setFont(col, bold)
            self.tree.addTopLevelItem(item)
            if entry.id == selected or (selected is None and in_use):
                self.tree.setCurrentItem(item)
        if current is not None and current.kind == "imported":
            self._add_own_model_row(current, model_state)
        # Every level in view without scrolling: there are only a handful.
        row = 2 * self.tree.fontMetrics().lineSpacing() + 6
        self.tree.setMinimumHeight(self.tree.header().sizeHint().height() + row * self.tree.topLevelItemCount() + 4)

    def _add_own_model_row(self, model: InstalledModel, model_state: str) -> None:
        """The user's own model file in use: shown too, so the table always says what is in use."""
        status = "Loading…" if model_state == "loading" else "● In use"
        item = QTreeWidgetItem([f"{model.label} · {model.level or 'GGUF'}", human(model.size_bytes), "—",
                                "Your own model file.", status])
        item.setData(0, ROLE_ENTRY, "")
        item.setToolTip(0, str(model.path))
        bold = QFont(item.font(0))
        bold.setBold(True)
        for col in range(len(COLUMNS)):
            item.setFont(col, bold)
        self.tree.addTopLevelItem(item)

    def status_of(self, level: str) -> str:
        """The Status column of `level` as shown."""
        item = self._item(level)
        return item.text(4) if item is not None else ""

    def _item(self, level: str) -> QTreeWidgetItem | None:
        for i in range(self.tree.topLevelItemCount()):
            item = self.tree.topLevelItem(i)
            if item.data(0, ROLE_ENTRY) and self._entry(item).level.lower() == level.lower():
                return item
        return None

    def _entry(self, item: QTreeWidgetItem) -> CatalogEntry:
        return self.switcher.manager.catalog.by_id(item.data(0, ROLE_ENTRY))

    # ---------------------------------------------------------------- actions
    def pick(self, level: str) -> None:
        """What a click on `level` does (also used by tests and the keyboard)."""
        item = self._item(level)
        if item is not None:
            self.tree.setCurrentItem(item)
            self._on_clicked(item)

    @Slot(QTreeWidgetItem)
    def _on_clicked(self, item: QTreeWidgetItem, _column: int = 0) -> None:
        if not item.data(0, ROLE_ENTRY):
            return  # the user's own model in use: nothing to switch to
        entry = self._entry(item)
        if self._downloading is not None:
            if entry.id != self._downloading.id:
                self._set_offer(None, f"{self._downloading.level} is downloading. Cancel it first to choose "
                                      "another level.")
            return
        if self.switcher.manager.find(entry.model, entry.level) is not None:
            self._set_offer(None, "")
            current = self.switcher.in_use()
            if current is not None and current.id == entry.id:
                return
            self.switcher.choose(entry.model, entry.level)
            self.levelChosen.emit(entry.level)
            self.refresh()
            return
        self._offer_download(entry)

    def _source_kept(self, entry: CatalogEntry) -> bool:
        """True for an MLX level whose original weights are on disk: getting it is a conversion only."""
        manager = self.switcher.manager
        return bool(entry.source_id) and manager.read_manifest(
            manager.folder(entry.engine, entry.source_id or ""), entry.engine) is not None

    def _download_figure(self, entry: CatalogEntry) -> str:
        """What getting `entry` downloads: the Hub's figure once known, else "about" the catalog's."""
        known = self._sizes.get(entry.id)
        if known is not None:
            return human(known)
        return f"about {human((entry.download_mb or entry.size_mb) * 1_000_000)}"

    def _offer_download(self, entry: CatalogEntry) -> None:
        have = kept_bytes(self.switcher.manager, entry)
        size = human(entry.size_mb * 1_000_000)
        kept = self._source_kept(entry)
        text = (f"<b>{entry.level}</b> is not {'made' if kept else 'downloaded'} yet. It takes about {size} on disk "
                f"and needs about {human(entry.memory_mb * 1_000_000)} of memory.")
        if kept:
            text += " TinyChat makes it from the original weights it kept: nothing is downloaded."
            button = f"Convert to {entry.level} and use it (no download)"
        elif entry.needs_conversion:
            figure = self._download_figure(entry)
            text += (f" TinyChat downloads the original weights ({figure}{' more' if have else ''}) once and "
                     "converts them on this computer.")
            button = (f"Resume download ({human(have)} already here)" if have
                      else f"Download {figure}, convert and use it")
            if entry.id not in self._sizes:
                self.switcher.downloads.ask_download_size(entry)
        else:
            button = f"Resume download ({human(have)} already here)" if have else f"Download {size} and use it"
        self._set_offer(entry, text, button)

    @Slot(str, object)
    def _on_size(self, entry_id: str, size: int | None) -> None:
        if size is None:
            return
        self._sizes[entry_id] = size
        if self._offered is not None and self._offered.id == entry_id and self._downloading is None:
            self._offer_download(self._offered)

    def _set_offer(self, entry: CatalogEntry | None, text: str, button: str = "") -> None:
        self._offered = entry
        self.offer.setText(text)
        self.offer.setVisible(bool(text))
        self.offer_button.setText(button)
        self.offer_button.setVisible(bool(button))

    @Slot()
    def _download_offered(self) -> None:
        entry = self._offered
        if entry is None:
            return
        self._downloading = entry
        self._set_offer(None, "")
        self.panel.begin(f"Making {entry.label}" if self._source_kept(entry) else f"Getting {entry.label}")
        self.switcher.choose(entry.model, entry.level)
        self.levelChosen.emit(entry.level)
        self.refresh()

    @Slot()
    def _on_cancel(self) -> None:
        self.switcher.cancel()

    @Slot(object)
    def _on_progress(self, p: JobProgress) -> None:
        if self._downloading is not None and p.job.key == self._downloading.id:
            self.panel.set_progress(p.progress)
            if p.progress.phase != self._phase:
                self._phase = p.progress.phase
                self.refresh()

    def _download_ended(self) -> CatalogEntry | None:
        """Hide the progress and show the levels again; returns the level that was downloading."""
        entry, self._downloading = self._downloading, None
        self._phase = ""
        self.panel.hide()
        self.refresh()
        return entry

    @Slot(object)
    def _on_switched(self, _model: object) -> None:
        self._download_ended()

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        entry = self._download_ended()
        if entry is not None:
            color = theme.current().error
            self._set_offer(entry, f"<span style='color:{color}'>{html.escape(message)}</span>", "Try again")

    @Slot(str)
    def _on_cancelled(self, message: str) -> None:
        converting = self._phase == "converting"
        entry = self._download_ended()
        if entry is not None:
            self._offer_download(entry)
            self.offer.setText(message if converting else
                               "Download paused. What was downloaded is kept; resuming continues from there.")

    @Slot(object)
    def _on_model_state(self, _status: object) -> None:
        self.refresh()
