"""What prompt lookup did, read from the engine's debug log (the answer is the same either way, so the
log is where drafting shows)."""

from __future__ import annotations

import re

import pytest


def drafts_taken(caplog: pytest.LogCaptureFixture) -> list[tuple[int, int]]:
    """(taken, drafted) of each answer that drafted, from the engine's debug log."""
    found = [re.search(r"(\d+) of (\d+) drafted tokens taken", r.getMessage()) for r in caplog.records]
    return [(int(m[1]), int(m[2])) for m in found if m]
