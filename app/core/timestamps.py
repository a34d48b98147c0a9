"""The range of dates TinyChat stores, shows and writes back, and safe conversions for stored times.

Stored times are Unix seconds. Every platform can turn a time between 1970 and 2999 into a local
date (Windows refuses negative times and years past 3000; Python refuses years past 9999), so import
accepts only that range; a stored value outside it (written by another tool) is shown as "unknown"
instead of stopping the app, and exported clamped into the range so the backup can be imported again.
"""

from __future__ import annotations

import logging
import math
from datetime import UTC, datetime

log = logging.getLogger(__name__)

MIN_TIME = 0.0  # 1970-01-01T00:00:00Z
MAX_TIME = datetime(3000, 1, 1, tzinfo=UTC).timestamp() - 1  # 2999-12-31T23:59:59Z
RANGE_TEXT = "1970–2999"


def showable(ts: object) -> bool:
    """True when `ts` is a number of Unix seconds inside the range every display can handle."""
    return (isinstance(ts, int | float) and not isinstance(ts, bool) and math.isfinite(ts)
            and MIN_TIME <= ts <= MAX_TIME)


def local_datetime(ts: object) -> datetime | None:
    """`ts` as a local datetime, or None (logged) when it cannot be shown."""
    if not showable(ts):
        log.warning("A stored time cannot be shown: %r", ts)
        return None
    try:
        return datetime.fromtimestamp(ts)  # type: ignore[arg-type]
    except (OverflowError, OSError, ValueError) as exc:  # a platform with a narrower local range
        log.warning("A stored time cannot be shown: %r (%r)", ts, exc)
        return None


def clamped(ts: object) -> float:
    """`ts` forced into the showable range (non-numbers become its start), for writing back."""
    if showable(ts):
        return float(ts)  # type: ignore[arg-type]
    log.warning("A stored time is outside %s and is written as the nearest date in range: %r",
                RANGE_TEXT, ts)
    if isinstance(ts, int | float) and not isinstance(ts, bool) and ts > MAX_TIME:  # +inf too
        return MAX_TIME
    return MIN_TIME


def iso_utc(ts: object) -> str:
    """`ts` as ISO 8601 in UTC, clamped into range so it always reads back."""
    return datetime.fromtimestamp(clamped(ts), UTC).isoformat()
