"""How the store's records map to SQLite rows and back (the only place that knows column encodings)."""

from __future__ import annotations

import json
import logging
import math
import sqlite3
import sys
from array import array
from collections.abc import Mapping
from typing import Any

from app.core.settings import Sampling
from app.core.store_types import Conversation, StoredMessage

log = logging.getLogger(__name__)

CONVERSATION_FIELDS = ("title", "pinned", "model_id", "quant", "chat_format", "system_prompt", "sampling")
STATS_FIELDS = ("prompt_tokens", "completion_tokens", "reused_tokens", "ttft_s", "tokens_per_s",
                "error", "token_ids")
MESSAGE_META = ("model_id", "quant", "chat_format", *STATS_FIELDS)


def insert(db: sqlite3.Connection, table: str, row: Mapping[str, Any]) -> None:
    """INSERT one row given as column → value (column names come from this module, never from users)."""
    db.execute(f"INSERT INTO {table} ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
               tuple(row.values()))


def encode_token_ids(ids: tuple[int, ...] | list[int] | None) -> bytes | None:
    """Token ids as a compact little-endian int32 BLOB (2 KB for a 512-token answer)."""
    if ids is None:
        return None
    packed = array("i", ids)
    if sys.byteorder == "big":
        packed.byteswap()
    return packed.tobytes()


def decode_token_ids(blob: bytes | None) -> tuple[int, ...] | None:
    if blob is None:
        return None
    packed = array("i")
    packed.frombytes(blob)
    if sys.byteorder == "big":
        packed.byteswap()
    return tuple(packed)


def encode_fields(values: Mapping[str, Any]) -> dict[str, Any]:
    """Message field values as column values (token ids packed)."""
    encoded = dict(values)
    if "token_ids" in encoded:
        encoded["token_ids"] = encode_token_ids(encoded["token_ids"])
    return encoded


def conversation_values(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Checked column values for the editable conversation fields."""
    unknown = set(fields) - set(CONVERSATION_FIELDS)
    if unknown:
        raise TypeError(f"unknown conversation fields: {sorted(unknown)}")
    values = dict(fields)
    if "pinned" in values:
        values["pinned"] = int(bool(values["pinned"]))
    if "sampling" in values:
        values["sampling"] = _sampling_text(values["sampling"])
    return values


def _sampling_text(sampling: Sampling | None) -> str | None:
    return None if sampling is None else json.dumps(sampling.to_json())


def conversation_from_row(row: sqlite3.Row) -> Conversation:
    """A conversation as stored; values another tool wrote with a wrong type are replaced (and logged)
    so one odd row never stops the list, a backup or the app's start."""
    fix = _RowFixer(row)
    sampling = None
    if row["sampling"]:
        try:
            sampling = Sampling.from_json(json.loads(row["sampling"]))
        except (ValueError, TypeError):
            log.warning("Conversation %s has unreadable sampling settings; using the app's", row["id"])
    return Conversation(
        id=row["id"], title=fix.text("title"), created_at=fix.time("created_at"),
        updated_at=fix.time("updated_at"), pinned=bool(row["pinned"]), model_id=fix.text("model_id", None),
        quant=fix.text("quant", None), chat_format=fix.text("chat_format", None),
        system_prompt=fix.text("system_prompt"), sampling=sampling,
        current_leaf_id=fix.text("current_leaf_id", None), trashed_at=fix.number("trashed_at"))


def conversation_row(conv: Conversation) -> dict[str, Any]:
    row = {name: getattr(conv, name) for name in Conversation.__dataclass_fields__}
    row["pinned"] = int(conv.pinned)
    row["sampling"] = _sampling_text(conv.sampling)
    return row


def message_from_row(row: sqlite3.Row) -> StoredMessage:
    """A message as stored, with wrongly typed values replaced (and logged) as for conversations."""
    fix = _RowFixer(row)
    values = {name: row[name] for name in StoredMessage.__dataclass_fields__}
    values.update(content=fix.text("content"), created_at=fix.time("created_at"),
                  token_ids=fix.token_ids())
    for name in ("model_id", "quant", "chat_format", "error", "parent_id"):
        values[name] = fix.text(name, None)
    for name in ("prompt_tokens", "completion_tokens", "reused_tokens"):
        number = fix.number(name)
        values[name] = int(number) if number is not None and math.isfinite(number) else None
    for name in ("ttft_s", "tokens_per_s"):
        values[name] = fix.number(name)
    return StoredMessage(**values)


def message_row(msg: StoredMessage) -> dict[str, Any]:
    return encode_fields({name: getattr(msg, name) for name in StoredMessage.__dataclass_fields__})


class _RowFixer:
    """Reads columns of one row, replacing a value of the wrong type by a neutral one and logging it."""

    def __init__(self, row: sqlite3.Row) -> None:
        self.row = row

    def _bad(self, column: str, value: object) -> None:
        log.warning("Stored row %s has an unusable %s (%.80r); showing a placeholder",
                    self.row["id"], column, value)

    def text(self, column: str, default: str | None = "") -> Any:
        value = self.row[column]
        if isinstance(value, str) or (value is None and default is None):
            return value
        self._bad(column, value)
        if isinstance(value, bytes):
            return value.decode("utf-8", "replace")
        return default if value is None else str(value)

    def number(self, column: str) -> float | None:
        value = self.row[column]
        if value is None or (isinstance(value, int | float) and not isinstance(value, bool)):
            return value
        self._bad(column, value)
        return None

    def time(self, column: str) -> float:
        """Unix seconds; NaN when the stored value is not a number (shown as an unknown date)."""
        value = self.number(column)
        return float("nan") if value is None else value

    def token_ids(self) -> tuple[int, ...] | None:
        value = self.row["token_ids"]
        try:
            return decode_token_ids(value)
        except (TypeError, ValueError):
            self._bad("token_ids", value)
            return None
