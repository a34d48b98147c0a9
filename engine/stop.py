"""Stop-string matching for streamed text, with hold-back.

Text that could still turn out to be the start of a stop string is held back until it can no
longer match, so a stop string split across tokens is never shown, not even in part.
"""

from __future__ import annotations

from collections.abc import Sequence


class StopMatcher:
    """Feed streamed text with `push`; it returns what is safe to show."""

    def __init__(self, stops: Sequence[str]) -> None:
        self._stops = tuple(s for s in stops if s)
        self._held = ""
        self.stopped = False

    def push(self, text: str) -> tuple[str, bool]:
        """Add `text`; return (text safe to show now, whether a stop string matched).
        Once stopped, the text before the stop is returned and everything after is dropped."""
        if self.stopped:
            return "", True
        buf = self._held + text
        first = min((i for i in (buf.find(s) for s in self._stops) if i >= 0), default=-1)
        if first >= 0:
            self.stopped = True
            self._held = ""
            return buf[:first], True
        keep = self._longest_partial_suffix(buf)
        self._held = buf[len(buf) - keep :] if keep else ""
        return buf[: len(buf) - keep], False

    def flush(self) -> str:
        """Release held-back text at the end of a generation that did not stop on a string."""
        out, self._held = ("" if self.stopped else self._held), ""
        return out

    def _longest_partial_suffix(self, buf: str) -> int:
        """Length of the longest suffix of `buf` that is a proper prefix of some stop string."""
        best = 0
        for s in self._stops:
            for n in range(min(len(s) - 1, len(buf)), best, -1):
                if buf.endswith(s[:n]):
                    best = n
                    break
        return best
