"""One call that sends the app's log to a rotating file in the log directory, and warnings to stderr.

The log is for diagnosis, never a reason to fail: when its file cannot be written (full or read-only
disk) records are dropped quietly instead of printing Python's "--- Logging error ---" tracebacks.
"""

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


def setup_logging(level: int = logging.INFO, echo: bool = True) -> Path | None:
    """Configure the root logger once; returns the log file path. Safe to call again (only the level
    changes). `echo`: also show warnings on stderr (the GUI's terminal); command-line tools pass False
    because they print their own one-line sentences. If the log directory cannot be written, logging
    goes to stderr only (or nowhere) and this returns None."""
    # A handler that cannot write (full disk, closed stderr) must not print a traceback in the
    # user's terminal; the record is dropped.
    logging.raiseExceptions = False
    root = logging.getLogger()
    root.setLevel(level)
    ours = [h for h in root.handlers if getattr(h, _MARK, False)]
    file_handlers = [h for h in ours if isinstance(h, logging.handlers.RotatingFileHandler)]
    if file_handlers:
        return Path(file_handlers[0].baseFilename)

    # Without any handler, Python's last resort would print warnings to stderr anyway.
    quiet: logging.Handler = logging.StreamHandler(sys.stderr) if echo else logging.NullHandler()
    quiet.setLevel(logging.WARNING)
    quiet.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    setattr(quiet, _MARK, True)
    if not ours:
        root.addHandler(quiet)

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
