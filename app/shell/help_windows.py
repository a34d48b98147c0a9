"""Help ▸ User guide: the guide shipped with the app (docs/user-guide.md), read offline in a window; and
Help ▸ Keyboard shortcuts, read from the window's own menus so the list is always the one in force."""

from __future__ import annotations

import re

from PySide6.QtCore import QUrl
from PySide6.QtGui import QImage, QKeySequence, QPixmap, QResizeEvent, QShowEvent, QTextCursor, QTextDocument
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QMenu,
    QMenuBar,
    QStyle,
    QTableWidget,
    QTableWidgetItem,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from app.core.resources import resource_path
from app.ui.windows import set_up_window

GUIDE = "docs/user-guide.md"
_IMAGE = re.compile(r"!\[([^\]]*)\]\(([^)\s]+)\)")
# Keys of the message box, which no menu lists.
TYPING_KEYS = (("Send the message", "Enter"), ("New line in the message", "Shift+Enter"))


def guide_markdown() -> str:
    """The user guide's Markdown; a picture the installed app does not carry shows as its caption."""
    path = resource_path(GUIDE)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return ("# TinyChat user guide\n\nThe guide is missing from this installation. Reinstall TinyChat "
                "to get it back.")
    return _IMAGE.sub(lambda m: m.group(0) if (path.parent / m.group(2)).is_file() else f"*{m.group(1)}*", text)


class GuideWindow(QDialog):
    """The user guide in a window of its own (not modal: the user can follow it in the app)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        set_up_window(self, "TinyChat user guide", "GuideWindow", (760, 720))
        self.browser = QTextBrowser(self)
        self.browser.setAccessibleName("User guide")
        self.browser.setOpenExternalLinks(True)
        self.browser.setSearchPaths([str(resource_path(GUIDE).parent)])
        self.browser.setMarkdown(guide_markdown())
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addWidget(self.browser, 1)
        lay.addWidget(buttons)

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self._fit_images()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        if self.isVisible():
            self._fit_images()

    def _fit_images(self) -> None:
        """Scale the screenshots down to the page's width (room kept for the scroll bar and a list's
        indent), so the text never scrolls sideways."""
        doc = self.browser.document()
        bar = self.browser.style().pixelMetric(QStyle.PixelMetric.PM_ScrollBarExtent)
        room = self.browser.contentsRect().width() - bar - 2 * int(doc.documentMargin()) - 4
        cursor = QTextCursor(doc)
        block = doc.begin()
        while block.isValid():
            indent = block.blockFormat().leftMargin() + doc.indentWidth() * (
                block.textList().format().indent() if block.textList() else block.blockFormat().indent())
            it = block.begin()
            while not it.atEnd():
                fragment = it.fragment()
                if fragment.charFormat().isImageFormat():
                    image = fragment.charFormat().toImageFormat()
                    picture = doc.resource(QTextDocument.ResourceType.ImageResource.value, QUrl(image.name()))
                    if isinstance(picture, (QImage, QPixmap)) and picture.width() > 0:
                        width = min(picture.width(), max(int(room - indent), 100))
                        image.setWidth(width)
                        image.setHeight(picture.height() * width / picture.width())
                        cursor.setPosition(fragment.position())
                        cursor.setPosition(fragment.position() + fragment.length(), QTextCursor.MoveMode.KeepAnchor)
                        cursor.setCharFormat(image)
                it += 1
            block = block.next()


def _plain(text: str) -> str:
    return text.replace("&&", "\0").replace("&", "").replace("\0", "&")


def shortcut_rows(menu_bar: QMenuBar) -> list[tuple[str, str]]:
    """(what, key) for every menu item that has a shortcut, in menu order, then the message box's keys."""
    rows: list[tuple[str, str]] = []

    def walk(menu: QMenu, within: str) -> None:
        for action in menu.actions():
            what = f"{within} ▸ {_plain(action.text())}" if within else _plain(action.text())
            if action.menu() is not None:
                walk(action.menu(), what)  # a submenu's items are named with it: "Export ▸ This chat…"
            elif not action.shortcut().isEmpty():
                rows.append((what, action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)))

    for top in menu_bar.actions():
        if top.menu() is not None:
            walk(top.menu(), "")
    return rows + list(TYPING_KEYS)


class ShortcutsDialog(QDialog):
    """A two-column table: what each shortcut does and its keys."""

    def __init__(self, rows: list[tuple[str, str]], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        set_up_window(self, "Keyboard shortcuts", "ShortcutsDialog", (460, 520))
        self.table = QTableWidget(len(rows), 2, self)
        self.table.setAccessibleName("Keyboard shortcuts")
        self.table.setHorizontalHeaderLabels(["Action", "Keys"])
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        for i, (what, key) in enumerate(rows):
            self.table.setItem(i, 0, QTableWidgetItem(what))
            self.table.setItem(i, 1, QTableWidgetItem(key))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addWidget(self.table, 1)
        lay.addWidget(buttons)

    def rows(self) -> list[tuple[str, str]]:
        """The table as shown."""
        return [(self.table.item(i, 0).text(), self.table.item(i, 1).text()) for i in range(self.table.rowCount())]
