"""The value checks behind settings.json: each returns the cleaned value, or `BAD`; a bad value is
logged and replaced by its default, and the user is told in a sentence."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import fields, replace
from typing import Any

log = logging.getLogger("app.core.settings")

Check = Callable[[object], object]

BAD = object()


def number(lo: float, hi: float) -> Check:
    """A number from lo to hi (stored as float)."""
    def check(v: object) -> object:
        if isinstance(v, bool) or not isinstance(v, int | float) or v != v:
            return BAD
        return float(v) if lo <= v <= hi else BAD

    return check


def integer(lo: int, hi: int, optional: bool = False) -> Check:
    """A whole number from lo to hi (or None when optional)."""
    def check(v: object) -> object:
        if v is None and optional:
            return None
        if isinstance(v, bool) or not isinstance(v, int):
            return BAD
        return v if lo <= v <= hi else BAD

    return check


def choice(options: tuple[str, ...]) -> Check:
    """One of `options`."""
    return lambda v: v if v in options else BAD


def text(max_len: int, optional: bool = False, nonempty: bool = False) -> Check:
    """A string of at most max_len characters (or None when optional)."""
    def check(v: object) -> object:
        if v is None and optional:
            return None
        if not isinstance(v, str) or len(v) > max_len or (nonempty and not v.strip()):
            return BAD
        return v

    return check


def flag(v: object) -> object:
    """A JSON true or false."""
    return v if isinstance(v, bool) else BAD


def warn(warnings: list[str] | None, key: str, value: object) -> None:
    """Log a bad value and add a sentence for the user to `warnings`."""
    shown = repr(value)
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    log.warning("Setting %s has an invalid value %s; using the default", key, shown)
    if warnings is not None:
        warnings.append(f"The setting “{key}” had an invalid value and was reset to its default.")


def nested_from_json(cls: Any, data: object, checks: dict[str, Check], key: str,
                      warnings: list[str] | None) -> Any:
    """A nested settings object from JSON; each bad or missing value falls back to its default."""
    base = cls()
    if not isinstance(data, dict):
        if data is not None:
            warn(warnings, key, data)
        return base
    values: dict[str, Any] = {}
    for f in fields(cls):
        if f.name not in data:
            continue
        checked = checks[f.name](data[f.name])
        if checked is BAD:
            warn(warnings, f"{key}.{f.name}", data[f.name])
        else:
            values[f.name] = checked
    return replace(base, **values)
