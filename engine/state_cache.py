"""Saved model states per token prefix: a memory LRU within a byte budget, and a size-capped folder on disk.

A state is a backend's KV cache serialized to bytes (llama.cpp's per-sequence state, mlx-lm's prompt
cache), saved with the exact token ids it holds. Its key names everything else the bytes depend on:
the model file, the engine build, the chat format and the context size. A state is only ever compared
with prompts under the same key; the KV of a prompt's first k tokens depends on those k tokens alone,
so the part of a state whose ids agree with a prompt is exactly what evaluating them would give.

A file on disk is `MAGIC | u32 header length | header (JSON) | ids (int32 LE) | payload`. The header
holds the key, the lengths and a SHA-256 of the ids and of the payload; a file whose magic, key,
lengths or checksums do not match is logged, deleted and never handed to an engine. Files are written
to a temporary name and renamed, so a crash leaves a whole file or none. Least recently used files go
first once the folder exceeds its cap (a file's mtime is its last use).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import struct
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from engine.types import DEFAULT_STATE_DISK_CAP, DEFAULT_STATE_MEMORY

log = logging.getLogger(__name__)

MAGIC = b"TCSTATE1"
SUFFIX = ".kvstate"
_MAX_HEADER = 64 * 1024
_READ_CHUNK = 8 * 2**20  # cancel is checked between chunks of a file being read
_STALE_TMP_S = 600  # a temporary file this old belongs to a write that died


@dataclass(frozen=True)
class StateKey:
    """What a state's bytes depend on besides its token ids."""

    model: str  # model_identity() of the file or folder
    build: str  # engine and library versions: the byte layout of a state
    chat_format: str
    n_ctx: int

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:20]


@dataclass(frozen=True)
class SavedState:
    """A state's token ids and the backend's bytes for them."""

    ids: np.ndarray  # int32, read-only
    payload: bytes


class StateCancelled(Exception):
    """Reading a state was abandoned because the request was cancelled."""


def _ids_array(ids: Sequence[int] | np.ndarray) -> np.ndarray:
    arr = np.array(ids, dtype="<i4")
    arr.flags.writeable = False
    return arr


def agreeing(ids: np.ndarray, prompt: np.ndarray) -> int:
    """Length of the common prefix of two id arrays."""
    n = min(len(ids), len(prompt))
    differ = np.flatnonzero(ids[:n] != prompt[:n])
    return int(differ[0]) if differ.size else n


_identities: dict[tuple[str, int, int], str] = {}


def model_identity(path: Path) -> str:
    """Identity of a model file or folder: names, sizes, mtimes and a hash of each file's first MiB."""
    path = Path(path)
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    h = hashlib.sha256()
    for f in files:
        st = f.stat()
        memo = (str(f), st.st_size, st.st_mtime_ns)
        if memo not in _identities:
            with f.open("rb") as fh:
                _identities[memo] = hashlib.sha256(fh.read(2**20)).hexdigest()
        h.update(f"{f.relative_to(path) if path.is_dir() else f.name}|{st.st_size}|{st.st_mtime_ns}|"
                 f"{_identities[memo]}\n".encode())
    return h.hexdigest()


class StateCache:
    """States in memory (LRU within `memory_budget` bytes) and in `folder` (LRU within `disk_cap`
    bytes; no folder: memory only). Meant for the engine thread; `size` and `clear` may be called
    from any thread."""

    def __init__(self, folder: Path | None, memory_budget: int = DEFAULT_STATE_MEMORY,
                 disk_cap: int = DEFAULT_STATE_DISK_CAP) -> None:
        self.folder = folder
        self.memory_budget = memory_budget
        self.disk_cap = disk_cap
        self._memory: OrderedDict[tuple[StateKey, bytes], SavedState] = OrderedDict()
        self._index: dict[str, np.ndarray] = {}  # file name -> its ids, for the files whose header was read
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ queries
    @property
    def memory_bytes(self) -> int:
        """Bytes of the states held in memory."""
        return sum(s.payload.__len__() for s in self._memory.values())

    def size(self) -> int:
        """Bytes the folder holds (states and unfinished writes)."""
        return sum(size for _, size, _ in self._files("*"))

    def clear(self) -> None:
        """Forget every state, in memory and on disk."""
        with self._lock:
            self._memory.clear()
            self._index.clear()
            for path, _, _ in self._files("*"):
                path.unlink(missing_ok=True)

    def best(self, key: StateKey, prompt: Sequence[int], beyond: int,
             cancel: threading.Event | None = None) -> tuple[SavedState, int] | None:
        """The state under `key` that agrees with `prompt` over the most tokens, if more than
        `beyond`, with that count. Memory first; a file is read only if it would win, and checked.
        Raises StateCancelled if `cancel` is set while a file is read."""
        want = _ids_array(prompt)
        with self._lock:
            held = [(agreeing(s.ids, want), s) for (k, _), s in self._memory.items() if k == key]
        found: list[tuple[int, SavedState | Path]] = [
            *held, *((agreeing(ids, want), path) for path, ids in self._disk_entries(key))]
        for agree, where in sorted(found, key=lambda f: (f[0], isinstance(f[1], SavedState)), reverse=True):
            if agree <= beyond:
                break
            if isinstance(where, SavedState):
                self._remember(key, where)  # most recently used
                return where, agree
            state = self._read(key, where, cancel)
            if state is not None:  # else it was damaged (logged, deleted): try the next best
                self._remember(key, state)
                return state, agree
        return None

    # ------------------------------------------------------------------ saving
    def put(self, key: StateKey, ids: Sequence[int] | np.ndarray, payload: bytes) -> None:
        """Keep a state in memory and on disk, replacing the states it extends."""
        state = SavedState(_ids_array(ids), payload)
        self._drop_prefixes(key, state.ids)
        self._remember(key, state)
        if self.folder is not None:
            try:
                self._write(key, state)
            except OSError as e:  # a full or read-only disk costs the saved state, never the answer
                log.warning("could not save a conversation state in %s: %r", self.folder, e)

    def _remember(self, key: StateKey, state: SavedState) -> None:
        with self._lock:
            entry = (key, state.ids.tobytes())
            self._memory.pop(entry, None)
            if len(state.payload) > self.memory_budget:
                return
            self._memory[entry] = state
            while self.memory_bytes > self.memory_budget:
                self._memory.popitem(last=False)

    def _drop_prefixes(self, key: StateKey, ids: np.ndarray) -> None:
        """A state that ids extend is worth nothing next to the new one: drop it."""
        with self._lock:
            for entry in [e for e, s in self._memory.items()
                          if e[0] == key and len(s.ids) <= len(ids) and agreeing(s.ids, ids) == len(s.ids)]:
                del self._memory[entry]
        for path, old in self._disk_entries(key):
            if len(old) <= len(ids) and agreeing(old, ids) == len(old):
                self._forget_file(path)

    # ------------------------------------------------------------------ disk
    def _files(self, pattern: str) -> list[tuple[Path, int, int]]:
        """(path, size, mtime_ns) of the folder's files matching `pattern`."""
        if self.folder is None:
            return []
        found = []
        try:
            entries = list(os.scandir(self.folder))
        except OSError:
            return []
        for entry in entries:
            if not Path(entry.name).match(pattern) or not entry.is_file():
                continue
            try:
                st = entry.stat()
            except OSError:
                continue
            found.append((Path(entry.path), st.st_size, st.st_mtime_ns))
        return found

    def _disk_entries(self, key: StateKey) -> list[tuple[Path, np.ndarray]]:
        """(path, ids) of the readable files under `key`; a file's header is read once (its name
        is derived from its key and ids, so a file rewritten under that name holds the same ids)."""
        out = []
        for path, _, _ in self._files(f"{key.digest()}-*{SUFFIX}"):
            with self._lock:
                ids = self._index.get(path.name)
            if ids is None:
                ids = self._read_header(key, path)
                if ids is None:
                    continue
                with self._lock:
                    self._index[path.name] = ids
            out.append((path, ids))
        return out

    def _read_header(self, key: StateKey, path: Path) -> np.ndarray | None:
        try:
            with path.open("rb") as f:
                header, ids = _parse_head(f, path.stat().st_size)
        except (OSError, ValueError) as e:
            self._damaged(path, str(e))
            return None
        if header["key"] != asdict(key):
            self._damaged(path, "its key does not match its name")
            return None
        return ids

    def _read(self, key: StateKey, path: Path, cancel: threading.Event | None) -> SavedState | None:
        """The state in `path`, checked against its header; None (logged, file deleted) if damaged."""
        try:
            with path.open("rb") as f:
                header, ids = _parse_head(f, path.stat().st_size)
                if header["key"] != asdict(key):
                    raise ValueError("its key does not match its name")
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
        except FileNotFoundError:  # evicted or cleared meanwhile
            self._forget_file(path, unlink=False)
            return None
        except (OSError, ValueError) as e:
            self._damaged(path, str(e))
            return None
        if digest.hexdigest() != header["payload_sha256"]:
            self._damaged(path, "its checksum does not match")
            return None
        os.utime(path)  # the file's mtime is its last use, for LRU eviction
        return SavedState(ids, b"".join(parts))

    def _write(self, key: StateKey, state: SavedState) -> None:
        assert self.folder is not None
        self.folder.mkdir(parents=True, exist_ok=True)
        ids_bytes = state.ids.tobytes()
        header = json.dumps({
            "key": asdict(key), "n_ids": len(state.ids), "payload_bytes": len(state.payload),
            "ids_sha256": hashlib.sha256(ids_bytes).hexdigest(),
            "payload_sha256": hashlib.sha256(state.payload).hexdigest(),
        }).encode()
        total = len(MAGIC) + 4 + len(header) + len(ids_bytes) + len(state.payload)
        if total > self.disk_cap:
            return
        self._evict(self.disk_cap - total)
        name = f"{key.digest()}-{hashlib.sha256(ids_bytes).hexdigest()[:20]}{SUFFIX}"
        tmp = self.folder / f".{name}.{os.getpid()}.tmp"
        try:
            with tmp.open("wb") as f:
                f.write(MAGIC + struct.pack("<I", len(header)) + header + ids_bytes)
                f.write(state.payload)
            os.replace(tmp, self.folder / name)
        finally:
            tmp.unlink(missing_ok=True)
        with self._lock:
            self._index[name] = state.ids

    def _evict(self, room: int) -> None:
        """Delete least recently used files (and dead temporary ones) until at most `room` bytes remain."""
        files = self._files("*")
        now = time.time_ns()
        for path, _, mtime in files:
            if path.name.endswith(".tmp") and now - mtime > _STALE_TMP_S * 10**9:
                path.unlink(missing_ok=True)
        states = sorted((f for f in files if f[0].name.endswith(SUFFIX)), key=lambda f: f[2])
        used = sum(size for _, size, _ in files)
        for path, size, _ in states:
            if used <= room:
                break
            self._forget_file(path)
            used -= size

    def _forget_file(self, path: Path, unlink: bool = True) -> None:
        with self._lock:
            self._index.pop(path.name, None)
        if unlink:
            try:
                path.unlink(missing_ok=True)
            except OSError as e:
                log.warning("could not delete the saved state %s: %r", path, e)

    def _damaged(self, path: Path, why: str) -> None:
        log.warning("ignoring a damaged conversation state %s: %s; deleting it", path.name, why)
        self._forget_file(path)


def _parse_head(f, file_size: int) -> tuple[dict, np.ndarray]:
    """Header and ids of an open state file positioned at its start; ValueError if they are damaged."""
    start = f.read(len(MAGIC) + 4)
    if len(start) < len(MAGIC) + 4 or start[: len(MAGIC)] != MAGIC:
        raise ValueError("it is not a TinyChat state file")
    (header_len,) = struct.unpack("<I", start[len(MAGIC):])
    if header_len > _MAX_HEADER:
        raise ValueError("its header is too long")
    try:
        header = json.loads(f.read(header_len))
        n_ids, payload_bytes = int(header["n_ids"]), int(header["payload_bytes"])
        ids_sha, key = header["ids_sha256"], header["key"]
        header["payload_sha256"] = str(header["payload_sha256"])
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f"its header is unreadable ({e!r})") from e
    if not isinstance(key, dict) or n_ids < 0 or payload_bytes < 0 or \
            file_size != len(start) + header_len + 4 * n_ids + payload_bytes:
        raise ValueError("its length does not match its header")
    raw = f.read(4 * n_ids)
    if hashlib.sha256(raw).hexdigest() != ids_sha:
        raise ValueError("its token ids do not match their checksum")
    return header, _ids_array(np.frombuffer(raw, dtype="<i4"))
