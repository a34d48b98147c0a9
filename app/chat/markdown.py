"""Markdown for chat messages: fenced code blocks and block quotes split out (code gets its own widget
with a Copy button, a quote one with a quote bar), the prose converted to HTML with Qt's own
CommonMark/GitHub parser (md4c), which draws a quote only as an indent.

Raw HTML in a message is shown as text, never interpreted: model output is not trusted markup.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from PySide6.QtGui import QTextDocument

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})\s*([^`\s]*)[^`]*$")
_QUOTE = re.compile(r"^ {0,3}> ?")
_BODY = re.compile(r"<body[^>]*>(.*)</body>", re.S)
DISPLAY_LIMIT = 50_000  # characters of one message laid out on screen
_FEATURES = QTextDocument.MarkdownFeature.MarkdownDialectGitHub | QTextDocument.MarkdownFeature.MarkdownNoHTML


@dataclass(frozen=True)
class Block:
    """A run of prose, a block quote (its text without the `>` markers), or one fenced code block
    (`closed` is False while it is still streaming)."""

    kind: Literal["prose", "quote", "code"]
    text: str
    lang: str = ""
    closed: bool = True


def split_blocks(text: str) -> list[Block]:
    """Split Markdown into prose and fenced code blocks, in order. An unclosed fence (an answer still
    streaming, or one that was stopped) runs to the end of the text. Only the first DISPLAY_LIMIT
    characters are split, followed by a note saying how much is not shown."""
    text = _shown_part(text)
    blocks: list[Block] = []
    prose: list[str] = []
    code: list[str] = []
    fence = ""
    lang = ""
    for line in text.split("\n"):
        m = _FENCE.match(line)
        if not fence:
            if m:
                if prose:
                    _add_prose(blocks, prose)
                    prose = []
                fence, lang, code = m.group(1), m.group(2), []
            else:
                prose.append(line)
        elif m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence) and not m.group(2):
            blocks.append(Block("code", "\n".join(code), lang))
            fence = ""
        else:
            code.append(line)
    if fence:
        blocks.append(Block("code", "\n".join(code), lang, closed=False))
    elif prose:
        _add_prose(blocks, prose)
    return blocks


def _add_prose(blocks: list[Block], lines: list[str]) -> None:
    """Add prose lines as prose and quote blocks, in order."""
    run: list[str] = []
    quoting = False
    for line in lines:
        marked = _QUOTE.match(line) is not None
        # A non-blank line right after quoted text continues the quote (CommonMark's lazy continuation).
        lazy = quoting and not marked and bool(line.strip()) and bool(run) and bool(run[-1].strip())
        if (marked or lazy) != quoting:
            _add_run(blocks, "quote" if quoting else "prose", run)
            run, quoting = [], marked or lazy
        run.append(_QUOTE.sub("", line, count=1) if marked else line)
    _add_run(blocks, "quote" if quoting else "prose", run)


def _add_run(blocks: list[Block], kind: Literal["prose", "quote"], lines: list[str]) -> None:
    text = "\n".join(lines).strip("\n")
    if text.strip():
        blocks.append(Block(kind, text))


_doc: QTextDocument | None = None


def prose_to_html(text: str) -> str:
    """HTML for a prose block (GitHub dialect: tables, strikethrough, task lists, autolinks), with the
    document-level font stripped so the label's own font and size apply."""
    global _doc
    if _doc is None:
        _doc = QTextDocument()  # reused: creating one per call costs more than the parse
    _doc.setMarkdown(text, _FEATURES)
    m = _BODY.search(_doc.toHtml())
    return m.group(1).strip() if m else ""


def _shown_part(text: str) -> str:
    """The text cut at DISPLAY_LIMIT, with a note saying so: Qt lays text out at about 25 µs a
    character, so an imported message of megabytes would freeze the window for minutes. Copy and
    export still give the whole message."""
    if len(text) <= DISPLAY_LIMIT:
        return text
    hidden = len(text) - DISPLAY_LIMIT
    return (text[:DISPLAY_LIMIT] + f"\n\n*… {hidden:,} more characters are not shown here. Copy the "
            "message or export the chat to read all of it.*")
