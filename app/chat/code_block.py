"""One fenced code block in a message: monospace, coloured by its language, scrolls sideways instead of
wrapping (with a thin bar), Copy button."""

from __future__ import annotations

from PySide6.QtCore import QEvent, Qt, QTimer, Slot
from PySide6.QtGui import QFontDatabase, QGuiApplication, QTextOption
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.chat.highlight import CodeHighlighter


class _CodeText(QPlainTextEdit):
    """Read-only code that is exactly as tall as its lines, so the chat scrolls, not the block."""

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.setReadOnly(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setWordWrapMode(QTextOption.WrapMode.NoWrap)
        self.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        font = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        font.setPointSizeF(max(self.font().pointSizeF() - 0.5, 7.0))  # the app's size, not the system's 9 pt
        self.setFont(font)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.viewport().setAutoFillBackground(False)
        self.setObjectName("CodeText")
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse
                                     | Qt.TextInteractionFlag.TextSelectableByKeyboard)
        self._lines = 0
        self._lang = ""
        self.highlighter = CodeHighlighter(self.document())

    def set_code(self, code: str, lang: str = "") -> None:
        if code == self.toPlainText() and lang == self._lang:
            return
        self._lang = lang
        self.highlighter.set_code(code, lang)
        self.setPlainText(code)
        self._lines = code.count("\n") + 1
        self._fit_height()

    def _fit_height(self) -> None:
        line = self.fontMetrics().lineSpacing()
        bar = self.horizontalScrollBar().sizeHint().height() if self._too_wide() else 0
        m = self.contentsMargins()
        self.setFixedHeight(self._lines * line + 2 * int(self.document().documentMargin()) + m.top()
                            + m.bottom() + bar + 2)

    def _too_wide(self) -> bool:
        widest = max((self.fontMetrics().horizontalAdvance(s) for s in self.toPlainText().split("\n")), default=0)
        return widest + 2 * self.document().documentMargin() > self.viewport().width()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._fit_height()

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange:  # the theme changed: recolour the code
            self.highlighter.restyle()

    def wheelEvent(self, event) -> None:
        # Vertical wheel scrolls the conversation, not this block (which has nothing to scroll).
        if abs(event.angleDelta().y()) > abs(event.angleDelta().x()):
            event.ignore()
        else:
            super().wheelEvent(event)


class CodeBlock(QFrame):
    """A code block with its language and a Copy button that confirms with "Copied"."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("CodeBlock")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 4, 6, 6)
        layout.setSpacing(2)
        head = QHBoxLayout()
        self.lang_label = QLabel(self)
        self.lang_label.setObjectName("CodeLang")
        self.copy_button = QToolButton(self)
        self.copy_button.setObjectName("ActionButton")
        self.copy_button.setText("Copy")
        self.copy_button.setToolTip("Copy this code")
        self.copy_button.clicked.connect(self.copy)
        head.addWidget(self.lang_label)
        head.addStretch(1)
        head.addWidget(self.copy_button)
        layout.addLayout(head)
        self.text = _CodeText(self)
        layout.addWidget(self.text)

    def set_code(self, code: str, lang: str) -> None:
        self.lang_label.setText(lang or "code")
        self.text.setAccessibleName(f"{lang} code" if lang else "Code")  # what a screen reader announces
        self.text.set_code(code, lang)

    def code(self) -> str:
        return self.text.toPlainText()

    @Slot()
    def copy(self) -> None:
        """Put the code (without fences) on the clipboard."""
        QGuiApplication.clipboard().setText(self.code())
        self.copy_button.setText("Copied")
        QTimer.singleShot(1500, self, self._reset_copy_label)

    @Slot()
    def _reset_copy_label(self) -> None:
        self.copy_button.setText("Copy")
