"""Decoding an import file and checking each JSON value in it, with a sentence naming the place of
every fault. Nothing here trusts the file: types, sizes, ids, dates and text are all checked."""

from __future__ import annotations

import codecs
import json
import math
import re
from datetime import UTC, datetime
from typing import Any

from app.core import timestamps
from app.core.store_types import ImportRejected

MAX_SHORT_TEXT = 1_000  # titles, model ids, error lines
INT32 = 2**31
_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
# UTF-8 is what TinyChat writes; a BOM-marked UTF-8 or UTF-16 file is what an editor may save it as.
_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


def decode(raw: str | bytes) -> Any:
    """Parse JSON text, refusing duplicate keys, NaN/Infinity and nesting deeper than Python allows."""
    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        obj = dict(pairs)
        if len(obj) != len(pairs):
            raise ValueError("a key appears twice in one object")
        return obj

    def no_constants(name: str) -> Any:
        raise ValueError(f"{name} is not a number JSON allows")

    try:
        text = _text(raw) if isinstance(raw, bytes) else raw
    except UnicodeDecodeError as exc:
        raise ImportRejected("This file is not UTF-8 text, so it is not a TinyChat export.",
                             detail=repr(exc)) from exc
    try:
        return json.loads(text, object_pairs_hook=no_duplicates, parse_constant=no_constants)
    except RecursionError as exc:
        raise ImportRejected("This file is nested too deeply to be a TinyChat export.") from exc
    except ValueError as exc:  # JSONDecodeError, duplicate keys, constants, integers too long
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc).split(";")[0]
        raise ImportRejected(f"This file is not valid JSON ({reason[:120]}).", detail=repr(exc)) from exc


def _text(raw: bytes) -> str:
    for bom, codec in _BOMS:
        if raw.startswith(bom):
            return raw.decode(codec)
    return raw.decode("utf-8")


def repair_text(value: str) -> str:
    """JSON may spell half of a UTF-16 pair (`\\ud83d`) that no text can hold; it becomes U+FFFD."""
    return _LONE_SURROGATE.sub("\ufffd", value)


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
            ok = len(value) <= limit
            value = repair_text(value)
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
