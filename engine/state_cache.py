"""Saved model states per token prefix: a memory LRU within a byte budget, and a size-capped folder on disk.

A state is a backend's KV cache serialized to bytes (llama.cpp's per-sequence state, mlx-lm's prompt
cache), saved with the exact token ids it holds. Its key names everything else the bytes depend on:
the model file, the engine build, the chat format and the context size. A state is only ever compared
with prompts under the same key; the KV of a prompt's first k tokens depends on those k tokens alone,
so the part of a state whose ids agree with a prompt is exactly what evaluating them would give.

On disk each state is one file (`state_file`); a file that fails its checks is logged, deleted and never
handed to an engine. Least recently used files go first once the folder exceeds its cap (a file's mtime
is its last use).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from engine import state_file
from engine.state_file import SUFFIX, ids_array
from engine.types import DEFAULT_STATE_DISK_CAP, DEFAULT_STATE_MEMORY

log = logging.getLogger(__name__)

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
    bytes; no folder: memory only), written by a thread of its own so an answer never waits for the
    disk. Meant for the engine thread; `size` and `clear` may be called from any thread."""

    def __init__(self, folder: Path | None, memory_budget: int = DEFAULT_STATE_MEMORY,
                 disk_cap: int = DEFAULT_STATE_DISK_CAP) -> None:
        self.folder = folder
        self.memory_budget = memory_budget
        self.disk_cap = disk_cap
        self._memory: OrderedDict[tuple[StateKey, bytes], SavedState] = OrderedDict()
        self._index: dict[str, np.ndarray] = {}  # file name -> its ids, for the files whose header was read
        self._lock = threading.RLock()
        self._writer: ThreadPoolExecutor | None = None
        self._pending: list[Future[None]] = []

    # ------------------------------------------------------------------ queries
    @property
    def memory_bytes(self) -> int:
        """Bytes of the states held in memory."""
        with self._lock:
            return sum(len(s.payload) for s in self._memory.values())

    def size(self) -> int:
        """Bytes the folder holds (states and unfinished writes)."""
        return sum(size for _, size, _ in self._files("*"))

    def clear(self) -> None:
        """Forget every state, in memory and on disk."""
        self.flush()
        with self._lock:
            self._memory.clear()
            self._index.clear()
            for path, _, _ in self._files("*"):
                path.unlink(missing_ok=True)

    def set_disk_cap(self, cap: int) -> None:
        """Make `cap` the folder's cap from now on, deleting least recently used files until it holds."""
        self.flush()  # a write in flight was sized against the old cap
        with self._lock:
            self.disk_cap = cap
            self._evict(cap)

    def best(self, key: StateKey, prompt: Sequence[int], beyond: int,
             cancel: threading.Event | None = None) -> tuple[SavedState, int] | None:
        """The state under `key` that agrees with `prompt` over the most tokens, if more than
        `beyond`, with that count. Memory first; a file is read only if it would win, and checked.
        Raises StateCancelled if `cancel` is set while a file is read."""
        want = ids_array(prompt)
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
        """Keep a state in memory at once and on disk in the background (`flush` waits for it),
        replacing the states it extends."""
        state = SavedState(ids_array(ids), payload)
        with self._lock:
            if (key, state.ids.tobytes()) in self._memory:  # kept already (an answer cancelled at once)
                self._memory.move_to_end((key, state.ids.tobytes()))
                return
            for entry in [e for e, s in self._memory.items() if e[0] == key and _extends(state.ids, s.ids)]:
                del self._memory[entry]
        self._remember(key, state)
        if self.folder is not None:
            if self._writer is None:
                self._writer = ThreadPoolExecutor(1, thread_name_prefix="state-writer")
            self._pending.append(self._writer.submit(self._store, key, state))

    def flush(self) -> None:
        """Wait until every state handed to `put` is on disk (or its write failed, logged)."""
        pending, self._pending = self._pending, []
        for write in pending:
            write.result()

    def close(self) -> None:
        """Finish the writes and stop the writer thread."""
        self.flush()
        if self._writer is not None:
            self._writer.shutdown()
            self._writer = None

    def _store(self, key: StateKey, state: SavedState) -> None:
        """On the writer thread: drop the files the state extends and write it."""
        try:
            for path, old in self._disk_entries(key):
                if _extends(state.ids, old):
                    self._forget_file(path)
            self._write(key, state)
        except OSError as e:  # a full or read-only disk costs the saved state, never the answer
            log.warning("could not save a conversation state in %s: %r", self.folder, e)
        except Exception:
            log.exception("could not save a conversation state in %s", self.folder)

    def _remember(self, key: StateKey, state: SavedState) -> None:
        with self._lock:
            entry = (key, state.ids.tobytes())
            self._memory.pop(entry, None)
            if len(state.payload) > self.memory_budget:
                return
            self._memory[entry] = state
            while self.memory_bytes > self.memory_budget:
                self._memory.popitem(last=False)

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
            return state_file.read_ids(path, asdict(key))
        except (OSError, ValueError) as e:
            self._damaged(path, str(e))
            return None

    def _read(self, key: StateKey, path: Path, cancel: threading.Event | None) -> SavedState | None:
        """The state in `path`, checked; None (logged, file deleted) if damaged."""
        try:
            ids, payload = state_file.read(path, asdict(key), cancel)
        except FileNotFoundError:  # evicted or cleared meanwhile
            self._forget_file(path, unlink=False)
            return None
        except (OSError, ValueError) as e:
            self._damaged(path, str(e))
            return None
        os.utime(path)  # the file's mtime is its last use, for LRU eviction
        return SavedState(ids, payload)

    def _write(self, key: StateKey, state: SavedState) -> None:
        assert self.folder is not None
        head = state_file.encode_head(asdict(key), state.ids, state.payload)
        total = len(head) + len(state.payload)
        if total > self.disk_cap:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        self._evict(self.disk_cap - total)
        name = f"{key.digest()}-{hashlib.sha256(state.ids.tobytes()).hexdigest()[:20]}{SUFFIX}"
        state_file.write(self.folder / name, head, state.payload)
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


def _extends(ids: np.ndarray, old: np.ndarray) -> bool:
    """Whether `ids` start with all of `old`: the older state is then worth nothing next to it."""
    return len(old) <= len(ids) and agreeing(old, ids) == len(old)
