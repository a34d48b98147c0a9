"""What the user sees of an answer as it streams: no word-start space before the first word, and
stop strings held back and cut (by the StopMatcher)."""

from __future__ import annotations

from collections.abc import Sequence

from engine.stop import StopMatcher


class AnswerText:
    """Feed decoded text pieces with `push`; it returns what to show now."""

    def __init__(self, stops: Sequence[str]) -> None:
        self._matcher = StopMatcher(stops)
        self._started = False

    def push(self, text: str) -> tuple[str, bool]:
        """(text to show now, whether a stop string ended the answer)."""
        if not self._started:
            text = text.lstrip(" ")  # SentencePiece's word-start space before the first word
            self._started = bool(text)
        return self._matcher.push(text)

    def flush(self) -> str:
        """Held-back text, released when the answer ended without a stop string."""
        return self._matcher.flush()
