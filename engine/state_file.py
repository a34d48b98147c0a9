"""The file a saved state is kept in: `MAGIC | u32 header length | header (JSON) | ids (int32 LE) | payload`.

The header holds the state's key, the number of ids and payload bytes, and a SHA-256 of each. A file is
trusted only whole: right magic, a header that parses, the key asked for, a length that adds up, and both
checksums; anything else is a `ValueError` naming what is wrong. Files are written under a temporary name
and renamed, so a crash leaves a whole file or none.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import threading
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

MAGIC = b"TCSTATE1"
SUFFIX = ".kvstate"
_START = len(MAGIC) + 4
_MAX_HEADER = 64 * 1024
_READ_CHUNK = 8 * 2**20  # cancel is checked between chunks of a payload being read


class StateCancelled(Exception):
    """Reading a state was abandoned because the request was cancelled."""


def ids_array(ids: Any) -> np.ndarray:
    """Token ids as a read-only little-endian int32 array, the form states are kept in."""
    arr = np.array(ids, dtype="<i4")
    arr.flags.writeable = False
    return arr


def encode_head(key: dict[str, Any], ids: np.ndarray, payload: bytes) -> bytes:
    """Everything of a state's file before its payload."""
    ids_bytes = ids.tobytes()
    header = json.dumps({
        "key": key, "n_ids": len(ids), "payload_bytes": len(payload),
        "ids_sha256": hashlib.sha256(ids_bytes).hexdigest(), "payload_sha256": hashlib.sha256(payload).hexdigest(),
    }).encode()
    return MAGIC + struct.pack("<I", len(header)) + header + ids_bytes


def write(path: Path, head: bytes, payload: bytes) -> None:
    """Write a state's file atomically (temporary name, then rename)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("wb") as f:
            f.write(head)
            f.write(payload)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def read_ids(path: Path, key: dict[str, Any]) -> np.ndarray:
    """The ids of the state in `path`, checked; ValueError if the file is damaged or holds another key."""
    with path.open("rb") as f:
        _, ids = _head(f, path.stat().st_size, key)
    return ids


def read(path: Path, key: dict[str, Any], cancel: threading.Event | None) -> tuple[np.ndarray, bytes]:
    """The ids and payload of the state in `path`, checked; ValueError if damaged, StateCancelled if
    `cancel` is set while it is read."""
    with path.open("rb") as f:
        header, ids = _head(f, path.stat().st_size, key)
        digest = hashlib.sha256()
        parts = []
        left = header["payload_bytes"]
        while left:
            if cancel is not None and cancel.is_set():
                raise StateCancelled
            part = f.read(min(left, _READ_CHUNK))
            if not part:
                raise ValueError("it is shorter than its header says")
            digest.update(part)
            parts.append(part)
            left -= len(part)
    if digest.hexdigest() != header["payload_sha256"]:
        raise ValueError("its checksum does not match")
    return ids, b"".join(parts)


def _head(f: BinaryIO, file_size: int, key: dict[str, Any]) -> tuple[dict[str, Any], np.ndarray]:
    """Header and ids of an open state file positioned at its start, checked."""
    start = f.read(_START)
    if len(start) < _START or start[: len(MAGIC)] != MAGIC:
        raise ValueError("it is not a TinyChat state file")
    (header_len,) = struct.unpack("<I", start[len(MAGIC):])
    if header_len > _MAX_HEADER:
        raise ValueError("its header is too long")
    try:
        header = json.loads(f.read(header_len))
        n_ids, payload_bytes = int(header["n_ids"]), int(header["payload_bytes"])
        ids_sha, payload_sha = str(header["ids_sha256"]), str(header["payload_sha256"])
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f"its header is unreadable ({e!r})") from e
    if header.get("key") != key:
        raise ValueError("it holds a state of another model, build, format or context than its name says")
    if n_ids < 0 or payload_bytes < 0 or file_size != _START + header_len + 4 * n_ids + payload_bytes:
        raise ValueError("its length does not match its header")
    raw = f.read(4 * n_ids)
    if hashlib.sha256(raw).hexdigest() != ids_sha:
        raise ValueError("its token ids do not match their checksum")
    header["payload_sha256"] = payload_sha
    return header, ids_array(np.frombuffer(raw, dtype="<i4"))
