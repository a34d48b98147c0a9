"""A message's Markdown on screen: prose labels, block quotes with a quote bar, and code blocks, updated
block by block so streaming into a long answer repaints only what changed."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QLabel, QSizePolicy, QVBoxLayout, QWidget

from app.chat.code_block import CodeBlock
from app.chat.markdown import Block, prose_to_html, split_blocks


def _prose_label(parent: QWidget) -> QLabel:
    label = QLabel(parent)
    label.setObjectName("MessageText")
    label.setTextFormat(Qt.TextFormat.RichText)
    label.setWordWrap(True)
    label.setOpenExternalLinks(True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction)
    label.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
    return label


class QuoteBlock(QFrame):
    """A block quote: its text beside a bar down the left side (colours in the theme's style sheet)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("QuoteBlock")
        self.label = _prose_label(self)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(12, 0, 0, 0)
        lay.addWidget(self.label)

    def set_markdown(self, text: str) -> None:
        self.label.setText(prose_to_html(text))


class MarkdownBody(QWidget):
    """Prose labels, quotes and code blocks for a Markdown text; on update only the blocks that changed
    are touched, so streaming into a long answer costs the last block, not the whole message."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.setSpacing(6)
        self._blocks: list[Block] = []
        self._widgets: list[QWidget] = []
        self.text = ""

    def set_markdown(self, text: str) -> None:
        if text == self.text and self._widgets:
            return
        self.text = text
        blocks = split_blocks(text) or [Block("prose", "")]
        for i, block in enumerate(blocks):
            if i < len(self._blocks) and self._blocks[i] == block:
                continue
            if i < len(self._widgets) and self._blocks[i].kind == block.kind:
                widget = self._widgets[i]
            else:
                widget = self._new_widget(block.kind)
                if i < len(self._widgets):
                    old = self._widgets[i]
                    self._layout.replaceWidget(old, widget)
                    old.hide()
                    old.deleteLater()
                    self._widgets[i] = widget
                else:
                    self._layout.addWidget(widget)
                    self._widgets.append(widget)
            self._fill(widget, block)
        for old in self._widgets[len(blocks):]:
            self._layout.removeWidget(old)
            old.hide()
            old.deleteLater()
        del self._widgets[len(blocks):]
        self._blocks = blocks

    def _new_widget(self, kind: str) -> QWidget:
        if kind == "code":
            return CodeBlock(self)
        if kind == "quote":
            return QuoteBlock(self)
        return _prose_label(self)

    @staticmethod
    def _fill(widget: QWidget, block: Block) -> None:
        if isinstance(widget, CodeBlock):
            widget.set_code(block.text, block.lang)
        elif isinstance(widget, QuoteBlock):
            widget.set_markdown(block.text)
        elif isinstance(widget, QLabel):
            widget.setText(prose_to_html(block.text) if block.text else "")

    def block_widgets(self) -> list[QWidget]:
        """The widget showing each block of the text, in order: a prose label, a QuoteBlock or a CodeBlock."""
        return list(self._widgets)

    def code_blocks(self) -> list[CodeBlock]:
        return [w for w in self._widgets if isinstance(w, CodeBlock)]

    def quote_blocks(self) -> list[QuoteBlock]:
        return [w for w in self._widgets if isinstance(w, QuoteBlock)]
