"""Writing a user's file whole or not at all: a temporary file in the same folder, flushed to disk and
renamed over the target, with the permissions any editor would give it."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO


def write_text_atomically(path: Path, text: str) -> None:
    """Replace `path` with `text` (UTF-8, `\\n` line ends). A crash or full disk leaves the previous
    file (or none), never half of one. Raises OSError."""
    with atomic_text_file(path) as fh:
        fh.write(text)


@contextlib.contextmanager
def atomic_text_file(path: Path) -> Iterator[TextIO]:
    """A text file (UTF-8, `\\n` line ends) that replaces `path` when the block ends without an
    exception, for writing a large file piece by piece; on any exception (a full disk, a cancel) the
    previous file (or none) stays and the piece written so far is deleted. Raises OSError."""
    mode = _mode_for(path)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            if hasattr(os, "fchmod"):  # mkstemp makes the file private (0600); an export is a document
                os.fchmod(fh.fileno(), mode)
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _mode_for(path: Path) -> int:
    """The target's own permissions when it exists, else 0666 less the user's umask."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        pass
    return 0o666 & ~_umask()


def _umask() -> int:
    # Reading the umask means setting it; /proc avoids the brief change where it exists.
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    current = os.umask(0o022)
    os.umask(current)
    return current
