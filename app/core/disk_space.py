"""Free disk space, asked before writing something large, so a backup that cannot fit is refused at
once in a sentence instead of failing after minutes of work."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from app.core.store_types import StoreError
from engine.progress import human

log = logging.getLogger(__name__)


def free_bytes(folder: Path) -> int | None:
    """Bytes free for this user in `folder` (or its nearest existing parent); None when unknown."""
    place = Path(folder)
    while not place.exists() and place != place.parent:
        place = place.parent
    try:
        return shutil.disk_usage(place).free
    except OSError as exc:
        log.info("could not ask %s for its free space: %r", place, exc)
        return None


def require_room(folder: Path, needed: int, doing: str) -> None:
    """Raise StoreError (cause "full") when `folder` has less than `needed` bytes free. `doing` names
    the job in a sentence: "This import", "The export"."""
    free = free_bytes(folder)
    if free is not None and free < needed:
        raise StoreError(f"{doing} needs about {human(needed)} of free space in {folder}, which has only "
                         f"{human(free)} free. Free some space there, or choose another place, and try again.",
                         detail=f"needed {needed} bytes, free {free}", cause="full")
