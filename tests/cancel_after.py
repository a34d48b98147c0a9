"""A cancel event that sets itself at a chosen check, so a cancel lands at a chosen point of the work that
polls it (inside a prompt's evaluation, a state's restore, a measurement window's decode)."""

from __future__ import annotations

import threading


class CancelAfter(threading.Event):
    """Set at its `n`-th check (`is_set` call)."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.checks = n

    def is_set(self) -> bool:
        self.checks -= 1
        if self.checks <= 0:
            self.set()
        return super().is_set()
