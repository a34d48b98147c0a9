"""Connecting many signals of one object at once, written as signal name = slot."""

from __future__ import annotations

from PySide6.QtCore import QObject


def connect_signals(source: QObject, **slots: object) -> None:
    """Connect each signal of `source` named by a keyword to the slot (or signal) given for it;
    a name `source` has no signal for raises AttributeError at once."""
    for name, slot in slots.items():
        getattr(source, name).connect(slot)
