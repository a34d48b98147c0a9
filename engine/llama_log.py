"""Routes llama.cpp's own log output into Python logging (logger "llama.cpp").

`Llama(verbose=False)` would redirect the process's file descriptors 1/2 while loading, hiding
every other thread's output too; instead we install our own `llama_log_set` callback once.
Recent warnings and errors are kept so a failed load can explain itself.
"""

from __future__ import annotations

import ctypes
import logging
from collections import deque

log = logging.getLogger("llama.cpp")

# enum ggml_log_level: NONE 0, DEBUG 1, INFO 2, WARN 3, ERROR 4, CONT 5 (llama-cpp-python 0.3.36's own
# mapping predates this order).
_LEVELS = {0: logging.CRITICAL, 1: logging.DEBUG, 2: logging.INFO, 3: logging.WARNING, 4: logging.ERROR}
_recent: deque[str] = deque(maxlen=20)
_pending = {"text": "", "level": logging.DEBUG}
_callback = None  # keeps the ctypes callback alive for as long as llama.cpp may call it


def _on_log(level: int, text: bytes, _user_data: ctypes.c_void_p) -> None:
    # llama.cpp logs line pieces; level 5 (CONT) continues the previous line.
    if level != 5:
        _pending["level"] = _LEVELS.get(level, logging.DEBUG)
    _pending["text"] += text.decode("utf-8", "replace")
    while "\n" in _pending["text"]:
        line, _, _pending["text"] = _pending["text"].partition("\n")
        if line.strip():
            lvl = _pending["level"]
            # llama.cpp's INFO chatter (every tensor, every load) is debug detail for us.
            log.log(logging.DEBUG if lvl == logging.INFO else lvl, "%s", line)
            if lvl >= logging.WARNING:
                _recent.append(line.strip())


def install() -> None:
    """Install the callback (idempotent). Call after `import llama_cpp`."""
    global _callback
    if _callback is not None:
        return
    import llama_cpp

    _callback = llama_cpp.llama_log_callback(_on_log)
    llama_cpp.llama_log_set(_callback, ctypes.c_void_p(0))


def recent_problems() -> list[str]:
    """The latest warning/error lines from llama.cpp (for error details in the log)."""
    return list(_recent)


def clear_recent() -> None:
    """Forget earlier problems, so the next failure reports only its own."""
    _recent.clear()
