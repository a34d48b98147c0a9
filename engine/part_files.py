"""What a download keeps on disk beside the model files: one `<name>.part` per file being fetched, the
bytes those already hold, the free space on their drive, and the leftovers of a failed job."""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.hub import RemoteSnapshot

PART_SUFFIX = ".part"


def free_bytes(path: Path) -> int:
    """Free space on the drive holding `path` (or its nearest existing parent)."""
    p = Path(path)
    while not p.exists() and p != p.parent:
        p = p.parent
    return shutil.disk_usage(p).free


def part_bytes(dest_dir: Path, snapshot: RemoteSnapshot) -> int:
    """Bytes of `snapshot` already on disk in `dest_dir` (finished files and partial ones)."""
    total = 0
    for f in snapshot.files:
        for candidate in (dest_dir / f.name, dest_dir / (f.name + PART_SUFFIX)):
            if candidate.exists():
                total += min(candidate.stat().st_size, f.size)
                break
    return total


def drop_empty_leftovers(dest_dir: Path) -> None:
    """After a failed job, remove what holds nothing to resume: empty part files, then an empty folder
    (otherwise the Models window would list a 0-byte "partial download")."""
    for part in dest_dir.glob("*" + PART_SUFFIX):
        with contextlib.suppress(OSError):
            if part.stat().st_size == 0:
                part.unlink()
    with contextlib.suppress(OSError):
        dest_dir.rmdir()  # only succeeds when nothing is left in it
