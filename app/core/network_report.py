"""The network log as people read it: the status bar's one-line summary, the Network page's rows, the
lines in "Copy diagnostics", and `network.log` in the log folder, which keeps every attempt across
sessions. The recording itself (audit hook, purposes, airplane mode) is engine/network_log.py."""

from __future__ import annotations

import logging
import logging.handlers
import time
from collections.abc import Sequence
from pathlib import Path

from engine import network_log
from engine.network_log import Attempt
from engine.progress import human

FILENAME = "network.log"
DOWNLOAD = "Model download"
KIND_WORDS = {"connect": "Connection", "send": "Data sent", "listen": "Listening", "lookup": "Name lookup",
              "request": "Request received"}
NOT_COUNTED = ("Bytes are what TinyChat's downloader received. TLS and HTTP headers, name lookups and "
               "anything a library transfers by itself are not counted.")
_file_log = logging.getLogger("tinychat.network")


def summary(attempts: Sequence[Attempt], airplane: bool) -> str:
    """One line for the status bar: "Offline · no connections since start", "1 download (668 MB)",
    "Airplane mode · 2 refused"."""
    used = [a for a in attempts if not a.refused and a.kind != "listen"]
    downloads = {a.purpose.subject for a in used if a.purpose.feature == DOWNLOAD}
    requests = [a for a in used if a.kind == "request"]
    others = [a for a in used if a.purpose.feature != DOWNLOAD and a.kind != "request"]
    refused = sum(a.refused for a in attempts)
    parts = []
    if downloads:
        received = sum(a.received for a in used if a.purpose.feature == DOWNLOAD)
        parts.append(f"{_count(len(downloads), 'download')} ({human(received)})")
    if others:
        parts.append(_count(len(others), "other connection"))
    if requests:
        parts.append(_count(len(requests), "API request"))
    if refused:
        parts.append(f"{refused} refused")
    if not parts:
        parts.append("no connections since start")
        if not airplane:
            return "Offline · " + parts[0]
    return " · ".join((["Airplane mode"] if airplane else []) + parts)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def when(attempt: Attempt) -> str:
    return time.strftime("%H:%M:%S", time.localtime(attempt.when))


def what(attempt: Attempt) -> str:
    """The attempt's kind in words; listening on this computer's own address says so, since nothing outside
    can reach it (urllib3's first import, for one, binds a probe socket to ::1)."""
    if attempt.kind == "listen" and network_log.is_loopback(attempt.host):
        return "Listening (this computer only)"
    return KIND_WORDS[attempt.kind]


def row(attempt: Attempt) -> tuple[str, str, str, str, str, str, str]:
    """Time, what, host, port, purpose, bytes received, result: one row of the Network page."""
    return (when(attempt), what(attempt), attempt.host,
            "" if attempt.port is None else str(attempt.port), str(attempt.purpose),
            human(attempt.received) if attempt.received else "—", "refused" if attempt.refused else "allowed")


def describe(attempt: Attempt) -> str:
    """One attempt in words, without its time: "connection huggingface.co:443 — Model download: … — allowed"."""
    where = f"{attempt.host}:{attempt.port}" if attempt.port is not None else attempt.host
    text = f"{what(attempt).lower()} {where} — {attempt.purpose} — "
    text += "refused" if attempt.refused else "allowed"
    return text + (f", {human(attempt.received)} received" if attempt.received else "")


def diagnostics_rows(limit: int = 50) -> list[tuple[str, str]]:
    """The Network section of "Copy diagnostics": airplane mode, the summary, the newest attempts."""
    attempts = network_log.LOG.attempts()
    rows = [("Airplane mode", "on" if network_log.airplane() else "off"),
            ("Since start", summary(attempts, network_log.airplane()))]
    if len(attempts) > limit:
        rows.append(("Older attempts", f"{len(attempts) - limit} more in {FILENAME}"))
    rows += [(when(a), describe(a)) for a in attempts[-limit:]]
    return rows


def keep_on_disk(folder: Path) -> Path | None:
    """Append every attempt from now on to `<folder>/network.log` (rotated at 1 MiB, one older file kept),
    instead of any file chosen before. Returns the path, or None when the folder cannot be written (the
    log then lives in memory only)."""
    path = folder / FILENAME
    old = list(_file_log.handlers)
    if any(Path(getattr(h, "baseFilename", "")) == path.absolute() for h in old):
        return path
    for handler in old:
        _file_log.removeHandler(handler)
        handler.close()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handler = logging.handlers.RotatingFileHandler(path, maxBytes=1 << 20, backupCount=1, encoding="utf-8")
    except OSError as e:
        logging.getLogger(__name__).warning("network log file %s cannot be written: %s", path, e)
        return None
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    _file_log.addHandler(handler)
    _file_log.setLevel(logging.INFO)
    _file_log.propagate = False  # kept apart from tinychat.log
    network_log.LOG.remove_listener(_write)
    network_log.LOG.add_listener(_write)
    return path


def _write(attempt: Attempt) -> None:
    _file_log.info("%s", describe(attempt))
