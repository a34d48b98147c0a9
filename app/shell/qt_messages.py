"""Qt's own log messages: the ones known to mean nothing are dropped, every other one is printed as Qt would."""

from __future__ import annotations

import sys
from collections.abc import Callable

from PySide6.QtCore import QMessageLogContext, QtMsgType, qFormatLogMessage, qInstallMessageHandler

# Platform plugins that do not implement window size hints (offscreen: the self-test, tests, headless runs)
# warn each time a shown window's layout changes its minimum size. The window is fine; nothing can be done.
HARMLESS = frozenset({"This plugin does not support propagateSizeHints()"})

Handler = Callable[[QtMsgType, QMessageLogContext, str], None]
_previous: Handler | None = None  # a handler installed before ours (a test harness), which sees the rest
_active = False


def install_filter() -> None:
    """Route Qt's messages through the filter from now on; calling it again changes nothing."""
    global _previous, _active
    if not _active:
        _previous = qInstallMessageHandler(_filter)
        _active = True


def _filter(mode: QtMsgType, context: QMessageLogContext, message: str) -> None:
    if message in HARMLESS:
        return
    if _previous is not None:
        _previous(mode, context, message)
    else:  # Qt's default handler: its message pattern, on stderr
        sys.stderr.write(qFormatLogMessage(mode, context, message) + "\n")
