"""Light and dark palettes, the style sheet built from them, and following the system's colour scheme."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFont, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication


@dataclass(frozen=True)
class Colors:
    """The few colours the app's own widgets use; everything else comes from the QPalette."""

    name: str
    window: str
    base: str  # the chat background
    sidebar: str
    text: str
    muted: str
    accent: str
    accent_text: str
    user_bubble: str
    code_bg: str
    code_border: str
    border: str
    warning: str
    error: str
    hover: str
    quote_bar: str
    # Code colours by role (see app/chat/highlight.py): GitHub's palettes, readable on code_bg.
    syntax_keyword: str
    syntax_name: str
    syntax_builtin: str
    syntax_string: str
    syntax_number: str
    syntax_comment: str


# Every colour as (light, dark), so the two palettes are read side by side.
_SHADES: dict[str, tuple[str, str]] = dict(
    window=("#f6f6f7", "#1e1f22"), base=("#ffffff", "#232428"), sidebar=("#f0f0f2", "#1b1c1f"),
    text=("#1d1d1f", "#e6e6e9"), muted=("#6e6e76", "#9a9aa3"), accent=("#3b6fd8", "#5b8def"),
    accent_text=("#ffffff", "#ffffff"), user_bubble=("#e9effb", "#2f3646"), code_bg=("#f5f6f8", "#18191c"),
    code_border=("#dcdde2", "#34363c"), border=("#dcdde2", "#34363c"), warning=("#9a6700", "#e3b341"),
    error=("#c0392b", "#ff6b5e"), hover=("#e4e5ea", "#2e3036"), quote_bar=("#c4c6cf", "#4b4e57"),
    syntax_keyword=("#cf222e", "#ff7b72"), syntax_name=("#8250df", "#d2a8ff"), syntax_builtin=("#953800", "#ffa657"),
    syntax_string=("#0a3069", "#a5d6ff"), syntax_number=("#0550ae", "#79c0ff"),
    syntax_comment=("#6e7781", "#8b949e"),
)
LIGHT = Colors(name="light", **{k: light for k, (light, _dark) in _SHADES.items()})
DARK = Colors(name="dark", **{k: dark for k, (_light, dark) in _SHADES.items()})


def system_prefers_dark() -> bool:
    """True when the desktop asks for a dark colour scheme (Qt ≥ 6.5 reads it from the platform)."""
    hints = QGuiApplication.styleHints()
    return hints.colorScheme() == Qt.ColorScheme.Dark


def resolve(theme: str) -> Colors:
    """The colours for a settings value: "light", "dark" or "system"."""
    if theme == "dark" or (theme == "system" and system_prefers_dark()):
        return DARK
    return LIGHT


def palette(c: Colors) -> QPalette:
    """A complete QPalette so standard widgets (menus, dialogs, scroll bars) match the app."""
    p = QPalette()
    role = QPalette.ColorRole
    for r, v in (
        (role.Window, c.window), (role.WindowText, c.text), (role.Base, c.base), (role.AlternateBase, c.sidebar),
        (role.Text, c.text), (role.Button, c.window), (role.ButtonText, c.text), (role.ToolTipBase, c.base),
        (role.ToolTipText, c.text), (role.Highlight, c.accent), (role.HighlightedText, c.accent_text),
        (role.Link, c.accent), (role.PlaceholderText, c.muted), (role.Mid, c.border), (role.Dark, c.border),
    ):
        p.setColor(r, QColor(v))
    disabled = QPalette.ColorGroup.Disabled
    for r in (role.Text, role.ButtonText, role.WindowText):
        p.setColor(disabled, r, QColor(c.muted))
    return p


def style_sheet(c: Colors, font_pt: int) -> str:
    """Styles for the app's own widgets, addressed by object name so nothing else is touched."""
    small = max(font_pt - 2, 7)
    return f"""
QWidget#Sidebar {{ background: {c.sidebar}; }}
QListView#ConversationList {{ background: {c.sidebar}; border: none; outline: none; }}
QListView#ConversationList::item {{ padding: 6px 8px; border-radius: 6px; margin: 1px 4px; }}
QListView#ConversationList::item:hover {{ background: {c.hover}; }}
QListView#ConversationList::item:selected {{ background: {c.accent}; color: {c.accent_text}; }}
QScrollArea#ChatScroll, QWidget#ChatColumn {{ background: {c.base}; border: none; }}
QFrame#UserBubble {{ background: {c.user_bubble}; border-radius: 12px; }}
QLabel#RoleLabel {{ color: {c.muted}; font-weight: 600; font-size: {small}pt; }}
QLabel#MetaLabel {{ color: {c.muted}; font-size: {small}pt; }}
QLabel#StatusBadge {{ color: {c.warning}; font-size: {small}pt; font-weight: 600; }}
QLabel#ErrorBadge {{ color: {c.error}; font-size: {small}pt; font-weight: 600; }}
QLabel#ForgottenDivider {{ color: {c.muted}; font-size: {small}pt; font-style: italic; padding: 6px;
    border-top: 1px solid {c.border}; border-bottom: 1px solid {c.border}; }}
QFrame#Message[found="true"] {{ background: {c.hover}; border-left: 3px solid {c.accent}; border-radius: 6px; }}
QFrame#CodeBlock {{ background: {c.code_bg}; border: 1px solid {c.code_border}; border-radius: 8px; }}
QPlainTextEdit#CodeText {{ background: transparent; border: none; }}
QFrame#CodeBlock QScrollBar:horizontal {{ height: 6px; background: transparent; border: none; margin: 0; }}
QFrame#CodeBlock QScrollBar::handle:horizontal {{ background: {c.code_border}; border-radius: 3px; min-width: 32px; }}
QFrame#CodeBlock QScrollBar::add-line:horizontal, QFrame#CodeBlock QScrollBar::sub-line:horizontal
    {{ width: 0; border: none; background: none; }}
QFrame#CodeBlock QScrollBar::add-page:horizontal, QFrame#CodeBlock QScrollBar::sub-page:horizontal
    {{ background: none; }}
QFrame#QuoteBlock {{ border: none; border-left: 3px solid {c.quote_bar}; }}
QFrame#QuoteBlock QLabel {{ color: {c.muted}; }}
QLabel#CodeLang {{ color: {c.muted}; font-size: {small}pt; }}
QToolButton#ActionButton {{ color: {c.muted}; border: none; padding: 2px 6px; border-radius: 4px;
    font-size: {small}pt; }}
QToolButton#ActionButton:hover {{ background: {c.hover}; color: {c.text}; }}
QFrame#ComposerFrame {{ background: {c.base}; border: 1px solid {c.border}; border-radius: 12px; }}
QPlainTextEdit#Composer {{ background: transparent; border: none; }}
QPushButton#SendButton {{ background: {c.accent}; color: {c.accent_text}; border: none; border-radius: 8px;
    padding: 6px 16px; font-weight: 600; }}
QPushButton#SendButton:disabled {{ background: {c.border}; color: {c.muted}; }}
QPushButton#StopButton {{ background: {c.error}; color: #ffffff; border: none; border-radius: 8px;
    padding: 6px 16px; font-weight: 600; }}
QPushButton#NewChatButton {{ text-align: left; padding: 7px 10px; border: 1px solid {c.border};
    border-radius: 8px; background: {c.base}; font-weight: 600; }}
QPushButton#NewChatButton:hover {{ background: {c.hover}; }}
QLineEdit#FilterBox {{ padding: 5px 8px; border: 1px solid {c.border}; border-radius: 6px; background: {c.base}; }}
QLabel#Notice {{ color: {c.muted}; padding: 4px 2px; }}
QFrame#UndoBar {{ background: {c.text}; border-radius: 8px; }}
QFrame#UndoBar QLabel {{ color: {c.base}; }}
QFrame#UndoBar QPushButton {{ color: {c.accent}; background: transparent; border: none; font-weight: 600; }}
QLabel#EmptyTitle {{ font-size: {font_pt + 8}pt; font-weight: 600; }}
QLabel#EmptyHint {{ color: {c.muted}; }}
QProgressBar#ContextMeter {{ border: 1px solid {c.border}; border-radius: 4px; background: {c.base};
    color: {c.text}; font-size: {small}pt; }}
QProgressBar#ContextMeter::chunk {{ background: {c.user_bubble}; border-radius: 3px; }}
QProgressBar#ContextMeter[full="true"]::chunk {{ background: {c.warning}; }}
QStatusBar QLabel {{ color: {c.muted}; font-size: {small}pt; padding: 0 4px; }}
"""


def apply(app: QApplication, theme: str, font_pt: int) -> Colors:
    """Apply the palette, style sheet and base font for `theme`; returns the colours chosen."""
    c = resolve(theme)
    app.setStyle("Fusion")  # the one style that honours a custom palette on every OS
    app.setPalette(palette(c))
    font = QFont(app.font())
    font.setPointSize(font_pt)
    app.setFont(font)
    app.setStyleSheet(style_sheet(c, font_pt))
    return c


def current() -> Colors:
    """The colours in use (read back from the application palette)."""
    app = QApplication.instance()
    if isinstance(app, QApplication) and app.palette().color(QPalette.ColorRole.Base).lightness() < 128:
        return DARK
    return LIGHT
