"""How the store's records map to SQLite rows and back (the only place that knows column encodings)."""

from __future__ import annotations

import json
import logging
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
    sampling = None
    if row["sampling"]:
        try:
            sampling = Sampling.from_json(json.loads(row["sampling"]))
        except ValueError:
            log.warning("Conversation %s has unreadable sampling settings; using the app's", row["id"])
    return Conversation(
        id=row["id"], title=row["title"], created_at=row["created_at"], updated_at=row["updated_at"],
        pinned=bool(row["pinned"]), model_id=row["model_id"], quant=row["quant"],
        chat_format=row["chat_format"], system_prompt=row["system_prompt"], sampling=sampling,
        current_leaf_id=row["current_leaf_id"], trashed_at=row["trashed_at"])


def conversation_row(conv: Conversation) -> dict[str, Any]:
    row = {name: getattr(conv, name) for name in Conversation.__dataclass_fields__}
    row["pinned"] = int(conv.pinned)
    row["sampling"] = _sampling_text(conv.sampling)
    return row


def message_from_row(row: sqlite3.Row) -> StoredMessage:
    values = {name: row[name] for name in StoredMessage.__dataclass_fields__}
    values["token_ids"] = decode_token_ids(row["token_ids"])
    return StoredMessage(**values)


def message_row(msg: StoredMessage) -> dict[str, Any]:
    return encode_fields({name: getattr(msg, name) for name in StoredMessage.__dataclass_fields__})
