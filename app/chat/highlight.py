"""Syntax colours for code blocks: Pygments lexes the code by the fence's language, and a
QSyntaxHighlighter paints each token's role in the current theme's colours (app.ui.theme)."""

from __future__ import annotations

import bisect
from functools import lru_cache

from pygments.lexer import Lexer
from pygments.lexers import get_lexer_by_name
from pygments.token import Comment, Keyword, Name, Number, Operator, String, _TokenType
from pygments.util import ClassNotFound
from PySide6.QtGui import QColor, QFont, QSyntaxHighlighter, QTextCharFormat, QTextDocument

from app.ui import theme

Span = tuple[int, int, str]  # column, length, role
# Token type → role; a token takes the role of its nearest listed ancestor (String.Doc → String).
ROLES: dict[_TokenType, str] = {
    Comment: "comment", Keyword: "keyword", Keyword.Constant: "number", Keyword.Type: "builtin",
    Operator.Word: "keyword", String: "string", Number: "number",
    Name.Function: "name", Name.Class: "name", Name.Decorator: "name", Name.Attribute: "name",
    Name.Builtin: "builtin", Name.Exception: "builtin", Name.Tag: "keyword",
}


@lru_cache(maxsize=64)
def lexer_for(lang: str) -> Lexer | None:
    """The lexer for a fence's language tag ("python", "py", "sh", "c++"), None when empty or unknown:
    guessing from the text is slow and often wrong, and plain code is better than wrongly coloured code.
    The installed app bundles the common languages' lexers only (packaging/hooks/hook-pygments.py)."""
    if not lang:
        return None
    try:
        return get_lexer_by_name(lang.lower(), stripnl=False, ensurenl=False)
    except (ClassNotFound, ImportError):  # ImportError: a lexer the installed app does not bundle
        return None


def _role(token: _TokenType) -> str | None:
    while token is not None:
        if token in ROLES:
            return ROLES[token]
        token = token.parent
    return None


def spans(code: str, lang: str) -> list[list[Span]]:
    """For each line of `code`, the coloured tokens on it; empty lists when the language is unknown."""
    lines: list[list[Span]] = [[] for _ in range(code.count("\n") + 1)]
    lexer = lexer_for(lang)
    if lexer is None:
        return lines
    starts = [0] + [i + 1 for i, ch in enumerate(code) if ch == "\n"]
    # Lexed with a final newline, as Pygments expects: some rules (a shell comment) end at one.
    for index, token, value in lexer.get_tokens_unprocessed(code + "\n"):
        role = _role(token)
        if role is None or not value:
            continue
        line = bisect.bisect_right(starts, index) - 1
        column = index - starts[line]
        for i, part in enumerate(value.split("\n")):  # a token may span lines (a docstring)
            if part and line + i < len(lines):
                lines[line + i].append((column if i == 0 else 0, len(part), role))
    return lines


def formats(c: theme.Colors) -> dict[str, QTextCharFormat]:
    """One character format per role, in the colours of theme `c`."""
    result = {}
    for role in ("keyword", "name", "builtin", "string", "number", "comment"):
        f = QTextCharFormat()
        f.setForeground(QColor(getattr(c, f"syntax_{role}")))
        if role == "comment":
            f.setFontItalic(True)
        if role == "keyword":
            f.setFontWeight(QFont.Weight.DemiBold)
        result[role] = f
    return result


class CodeHighlighter(QSyntaxHighlighter):
    """Colours one code document. `set_code` before the document's text changes; `restyle` after a
    theme change."""

    def __init__(self, document: QTextDocument) -> None:
        super().__init__(document)
        self._spans: list[list[Span]] = []
        self._formats = formats(theme.current())

    def set_code(self, code: str, lang: str) -> None:
        self._spans = spans(code, lang)

    def restyle(self) -> None:
        self._formats = formats(theme.current())
        self.rehighlight()

    def highlightBlock(self, text: str) -> None:
        n = self.currentBlock().blockNumber()
        if 0 <= n < len(self._spans):
            for column, length, role in self._spans[n]:
                self.setFormat(column, length, self._formats[role])
