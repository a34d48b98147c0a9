"""Checking each JSON value of an import file, with a sentence naming the place of every fault.
Nothing here trusts the file: types, sizes, ids, dates and text are all checked."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Any

from app.core import timestamps
from app.core.store_types import ImportRejected

MAX_SHORT_TEXT = 1_000  # titles, model ids, error lines
INT32 = 2**31
_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


class Fields:
    """Typed access to one JSON object of the file, raising ImportRejected with its place on any mismatch."""

    def __init__(self, value: Any, where: str) -> None:
        if not isinstance(value, dict):
            raise ImportRejected(f"In this file, {where} is not a JSON object.")
        self.value, self.where = value, where

    def get(self, key: str, kind: type, optional: bool = False, limit: int = MAX_SHORT_TEXT) -> Any:
        """The value of `key`, which must be of `kind` (str within `limit` characters, int within int32,
        float finite); None when optional and missing or null."""
        if key not in self.value or self.value[key] is None:
            if optional:
                return None
            raise ImportRejected(f"In this file, {self.where} lacks “{key}”.")
        value = self.value[key]
        ok = isinstance(value, kind) and not (kind is not bool and isinstance(value, bool))
        if kind is float:
            ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        if kind is int and ok:
            ok = -INT32 <= value < INT32
        if kind is str and ok:
            ok = len(value) <= limit  # lone surrogate halves were made U+FFFD as the file was read
        if not ok:
            raise ImportRejected(f"In this file, “{key}” of {self.where} has a wrong type, size or value.")
        return value

    def ident(self, key: str, optional: bool = False) -> str | None:
        """An id: 1–64 characters of A–Z a–z 0–9 _ -."""
        value = self.get(key, str, optional)
        if value is not None and not _ID.fullmatch(value):
            raise ImportRejected(f"In this file, “{key}” of {self.where} is not a valid id.")
        return value

    def time(self, key: str, optional: bool = False) -> float | None:
        """An ISO 8601 date (UTC when it has no offset) inside the range TinyChat can show."""
        value = self.get(key, str, optional, limit=64)
        if value is None:
            return None
        try:
            parsed = datetime.fromisoformat(value)
            ts = (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()
        except (ValueError, OverflowError) as exc:  # OverflowError: year 1 or 9999 shifted by its offset
            raise ImportRejected(f"In this file, “{key}” of {self.where} is not a date.") from exc
        if not timestamps.showable(ts):
            raise ImportRejected(f"In this file, “{key}” of {self.where} is {value}, outside the years "
                                 f"{timestamps.RANGE_TEXT} that TinyChat can show.")
        return ts

    def choice(self, key: str, options: tuple[str, ...]) -> str:
        """One of `options`."""
        value = self.get(key, str)
        if value not in options:
            raise ImportRejected(
                f"In this file, “{key}” of {self.where} must be one of {', '.join(options)}.")
        return value
