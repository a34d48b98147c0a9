"""One call that sends the app's log to a rotating file in the log directory, and warnings to stderr."""

from __future__ import annotations

import logging
import logging.handlers
import sys
from pathlib import Path

from app.core import paths

LOG_FILENAME = "tinychat.log"
_MAX_BYTES = 2 * 1024 * 1024
_BACKUPS = 3
_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(threadName)s] %(message)s"
_MARK = "_tinychat_handler"  # tags our handlers so a second call adds nothing


def setup_logging(level: int = logging.INFO) -> Path | None:
    """Configure the root logger once; returns the log file path. Safe to call again (only the level
    changes). If the log directory cannot be written, logging goes to stderr only and this returns None."""
    root = logging.getLogger()
    root.setLevel(level)
    ours = [h for h in root.handlers if getattr(h, _MARK, False)]
    file_handlers = [h for h in ours if isinstance(h, logging.handlers.RotatingFileHandler)]
    if file_handlers:
        return Path(file_handlers[0].baseFilename)

    stderr = logging.StreamHandler(sys.stderr)
    stderr.setLevel(logging.WARNING)
    stderr.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    setattr(stderr, _MARK, True)
    if not ours:
        root.addHandler(stderr)

    try:
        path = paths.log_dir() / LOG_FILENAME
        handler = logging.handlers.RotatingFileHandler(
            path, maxBytes=_MAX_BYTES, backupCount=_BACKUPS, encoding="utf-8"
        )
    except OSError as exc:
        # A read-only home must not stop the app from starting; the user still sees warnings.
        logging.getLogger(__name__).warning("Cannot write the log file, logging to stderr only: %s", exc)
        return None
    handler.setFormatter(logging.Formatter(_FORMAT))
    setattr(handler, _MARK, True)
    root.addHandler(handler)
    return path
