"""How a message's Markdown looks: code coloured by Pygments in the theme's colours with a thin scroll bar,
and block quotes set off by a quote bar."""

from __future__ import annotations

import pytest
from PySide6.QtGui import QColor, QImage
from PySide6.QtWidgets import QApplication, QWidget

from app.chat.code_block import CodeBlock
from app.chat.markdown import Block, split_blocks
from app.chat.markdown_body import MarkdownBody
from app.ui import theme

CODE = 'def greet(name):\n    return "hi " + name  # say it\nprint(greet("you"), 42)'


@pytest.fixture
def themed(qapp):
    """Yields a function that applies a theme; the light default is restored afterwards."""
    def use(name: str) -> theme.Colors:
        return theme.apply(qapp, name, 11)
    yield use
    theme.apply(qapp, "light", 11)


def colour_of(block: CodeBlock, line: int, word: str) -> str | None:
    """The foreground colour the code view paints `word` of `line` in, or None if it is plain."""
    text_block = block.text.document().findBlockByNumber(line)
    start = text_block.text().index(word)
    for r in text_block.layout().formats():
        if r.start <= start < r.start + r.length and r.format.hasProperty(r.format.Property.ForegroundBrush):
            return r.format.foreground().color().name()
    return None


def shown(qtbot, widget: QWidget, width: int = 420) -> QImage:
    widget.resize(width, widget.sizeHint().height())
    widget.show()
    qtbot.waitExposed(widget)
    QApplication.processEvents()
    return widget.grab().toImage()


def test_python_code_is_coloured_by_its_lexer_in_the_themes_colours(qtbot, themed):
    c = themed("light")
    block = CodeBlock()
    qtbot.addWidget(block)
    block.set_code(CODE, "python")
    assert colour_of(block, 0, "def") == c.syntax_keyword
    assert colour_of(block, 0, "greet") == c.syntax_name
    assert colour_of(block, 1, '"hi "') == c.syntax_string
    assert colour_of(block, 1, "# say it") == c.syntax_comment
    assert colour_of(block, 2, "print") == c.syntax_builtin
    assert colour_of(block, 2, "42") == c.syntax_number
    assert colour_of(block, 1, "name") is None  # a plain variable keeps the text colour

    dark = themed("dark")  # switching the theme recolours code already on screen
    assert dark.syntax_keyword != c.syntax_keyword
    assert colour_of(block, 0, "def") == dark.syntax_keyword


def test_the_fence_language_picks_the_lexer_and_an_unknown_one_stays_plain(qtbot, themed):
    c = themed("light")
    block = CodeBlock()
    qtbot.addWidget(block)
    block.set_code("echo $HOME  # where", "bash")
    assert colour_of(block, 0, "echo") == c.syntax_builtin
    assert colour_of(block, 0, "# where") == c.syntax_comment
    block.set_code(CODE, "no-such-language")
    assert all(colour_of(block, line, word) is None for line, word in ((0, "def"), (1, "# say it")))
    assert block.code() == CODE


def test_a_long_code_line_scrolls_with_a_thin_bar_not_a_heavy_black_one(qtbot, themed):
    for name in ("light", "dark"):
        c = themed(name)
        block = CodeBlock()
        qtbot.addWidget(block)
        block.set_code("x = '" + "long " * 60 + "'", "python")
        image = shown(qtbot, block)
        bar = block.text.horizontalScrollBar()
        assert bar.isVisible() and bar.height() <= 8
        top_left = bar.mapTo(block, bar.rect().topLeft())
        pixels = [QColor(image.pixel(x, top_left.y() + y)) for x in range(top_left.x(), top_left.x() + bar.width())
                  for y in range(bar.height())]
        background = QColor(c.code_bg).lightness()
        # Nothing in the bar stands out from the block more than its border colour does.
        limit = abs(QColor(c.code_border).lightness() - background) + 12
        assert max(abs(p.lightness() - background) for p in pixels) <= limit, name


def test_a_block_quote_is_its_own_block_without_the_markers():
    assert split_blocks("Before\n\n> A quoted line\n> that goes on.\nlazily\n\nAfter") == [
        Block("prose", "Before"), Block("quote", "A quoted line\nthat goes on.\nlazily"), Block("prose", "After")]
    assert split_blocks(">nested\n>> deeper") == [Block("quote", "nested\n> deeper")]


def test_a_block_quote_is_drawn_with_a_quote_bar_down_its_left_side(qtbot, themed):
    c = themed("light")
    body = MarkdownBody()
    qtbot.addWidget(body)
    body.set_markdown("Before\n\n> Quoted words\n> on two lines\n\nAfter")
    quote = body.quote_blocks()[0]
    assert "Quoted words on two lines" in quote.label.text().replace("\n", " ")
    image = shown(qtbot, body)
    top_left = quote.mapTo(body, quote.rect().topLeft())
    bar = QColor(c.quote_bar)
    column = [QColor(image.pixel(top_left.x() + 1, top_left.y() + y)) for y in range(quote.height())]
    assert all(p == bar for p in column)
    inside = QColor(image.pixel(top_left.x() + 8, top_left.y() + 1))
    assert inside != bar
