"""Reading the file a user asked to import: a regular file only, never waiting — a device, a named pipe
or a folder is refused before a byte is read — and streamed, so a file of any size reads in flat memory.

`ImportFile` hands the JSON parser UTF-8 bytes whatever the file was saved as (UTF-8, or UTF-8/UTF-16
with a byte order mark), with every lone half of a UTF-16 surrogate pair spelled as an escape turned
into U+FFFD, which JSON can spell but no text can hold."""

from __future__ import annotations

import codecs
import io
import os
import re
import stat
from pathlib import Path

from app.core.store_types import ImportRejected

CHUNK = 1024 * 1024
_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a named pipe"), (stat.S_ISCHR, "a device"),
          (stat.S_ISBLK, "a disk device"), (stat.S_ISSOCK, "a socket"))
_BOMS = ((codecs.BOM_UTF8, None), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))
# A lone half of a UTF-16 surrogate pair spelled as an escape: a high half not followed by a low one, or a
# low half not preceded by a high one. Valid pairs do not match, and the pattern starts with a literal, so
# text full of escaped emoji costs one fast scan. (Whether the backslash is itself escaped is decided
# for each match, which is rare.)
_LONE_SURROGATE = re.compile(rb"\\u(?:[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F][0-9a-fA-F]{2})"
                             rb"|(?<!\\u[dD][89abAB][0-9a-fA-F]{2}\\u)[dD][c-fC-F][0-9a-fA-F]{2})")
_HIGH_HALF = re.compile(rb"\\u[dD][89abAB][0-9a-fA-F]{2}")
_ESCAPE_BYTES = frozenset(b"\\uU0123456789abcdefABCDEF")  # every byte a `\uXXXX` escape can hold
_SEARCH = 4096


class UnreadableFile(ImportRejected):
    """The file could not be opened or read (missing, no permission, disk error)."""


class ImportFile:
    """An open import file read as UTF-8 JSON text; `done` and `size` are bytes of the file itself."""

    def __init__(self, path: Path, fd: int, size: int, data: bytes | None = None) -> None:
        self.path, self.size, self.done = path, size, 0
        self._fd = fd
        self._data = None if data is None else io.BytesIO(data)
        self._held = b""  # the end of the last read, kept until the escape it may start is whole
        self._decoder: codecs.IncrementalDecoder | None = None
        self._started = False
        self._ended = False

    def read(self, n: int = CHUNK) -> bytes:
        """Up to about `n` bytes of UTF-8 JSON text; b"" at the end of the file (and for `n` 0, which
        the parser asks to learn that this file gives bytes)."""
        while n > 0 and not self._ended:
            raw = self._raw(n)
            if not self._started:
                raw = self._start(raw)
            if self._decoder is not None:
                raw = self._decoder.decode(raw, final=not raw).encode("utf-8")
            text = self._held + raw
            if self._ended:
                self._held = b""
                return _repaired(text)
            cut = _safe_end(text)
            self._held = text[cut:]
            if cut:
                return _repaired(text[:cut])
        return b""

    def close(self) -> None:
        """Close the file; safe to call twice."""
        if self._fd >= 0 and self._data is None:
            os.close(self._fd)
            self._fd = -1

    def _raw(self, n: int) -> bytes:
        try:
            chunk = self._data.read(n) if self._data is not None else os.read(self._fd, n)
        except OSError as exc:
            raise UnreadableFile(f"Could not read {self.path}: {exc.strerror or exc}.", detail=repr(exc)) from exc
        self.done += len(chunk)
        self._ended = not chunk
        return chunk

    def _start(self, raw: bytes) -> bytes:
        """Drop a byte order mark, choosing the decoder it names; wait for enough bytes to tell."""
        while len(raw) < 3 and not self._ended:
            raw += self._raw(3 - len(raw))
        self._started = True
        for bom, codec in _BOMS:
            if raw.startswith(bom):
                if codec is not None:
                    self._decoder = codecs.getincrementaldecoder(codec)()
                return raw[len(bom):]
        return raw


def import_bytes(data: bytes) -> ImportFile:
    """An export already in memory, read exactly as a file would be."""
    return ImportFile(Path("<memory>"), -1, len(data), data)


def _safe_end(text: bytes) -> int:
    """Where `text` may be cut: just after its last byte that cannot be part of an escape, so that no
    escape, pair of escapes or run of backslashes is split, and each piece is repaired on its own."""
    for i in range(len(text) - 1, max(len(text) - _SEARCH, 0) - 1, -1):
        if text[i] not in _ESCAPE_BYTES:
            return i + 1
    # Kilobytes of nothing but escapes (a string of emoji written with ensure_ascii): cut between two
    # escapes, but never after a high half, whose low half may follow.
    for cut in range(max(len(text) - _SEARCH, 0), 0, -1):
        if b"\\" not in text[max(cut - 5, 0):cut] and not _HIGH_HALF.fullmatch(text, max(cut - 6, 0), cut):
            return cut
    return 0


def _repaired(text: bytes) -> bytes:
    if b"\\ud" not in text and b"\\uD" not in text:
        return text
    def replace(m: re.Match[bytes]) -> bytes:
        start = before = m.start()
        while before and text[before - 1] == 0x5C:  # the backslashes right before it
            before -= 1
        return m.group(0) if (start - before) % 2 else rb"\ufffd"  # odd: `\\` then plain text "ud83c"

    return _LONE_SURROGATE.sub(replace, text)


def open_import_file(path: Path) -> ImportFile:
    """`path` (symlinks followed) opened for reading if it is a regular file. Raises ImportRejected for
    anything else, UnreadableFile when the system refuses to read it."""
    try:
        _check(os.stat(path), path)  # before opening: opening a device or pipe can itself block
        # O_NONBLOCK: if the path was swapped for a pipe since the check, open returns at once.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
                     | getattr(os, "O_BINARY", 0))
    except OSError as exc:
        raise UnreadableFile(f"Could not read {path}: {exc.strerror or exc}.", detail=repr(exc)) from exc
    try:
        st = os.fstat(fd)
        _check(st, path)  # the file actually opened
    except BaseException:
        os.close(fd)
        raise
    return ImportFile(path, fd, st.st_size)


def _check(st: os.stat_result, path: Path) -> None:
    for test, kind in _KINDS:
        if test(st.st_mode):
            raise ImportRejected(f"{path} is {kind}, not a file; choose a JSON file written by "
                                 "TinyChat's export.")
    if not stat.S_ISREG(st.st_mode):
        raise ImportRejected(f"{path} is not a regular file; choose a JSON file written by TinyChat's export.")
