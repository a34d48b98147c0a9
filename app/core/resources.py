"""Finds the files TinyChat ships with (icons, styles, catalog data), from source or from a frozen build.

From source the root is the repository checkout; in a PyInstaller build it is the bundle's data folder
(`sys._MEIPASS`, the `_internal` folder of the onedir app, `Contents/Resources` inside a macOS `.app`).
The spec copies `assets/` to the same relative place, so one relative path works in both.
"""

from __future__ import annotations

import sys
from pathlib import Path

_SOURCE_ROOT = Path(__file__).resolve().parents[2]


def is_frozen() -> bool:
    """True when running from a PyInstaller build."""
    return bool(getattr(sys, "frozen", False)) and hasattr(sys, "_MEIPASS")


def resource_root() -> Path:
    """The folder that relative resource paths start from."""
    return Path(sys._MEIPASS) if is_frozen() else _SOURCE_ROOT  # type: ignore[attr-defined]


def resource_path(rel: str) -> Path:
    """Absolute path of a shipped file, e.g. `resource_path("assets/tinychat.png")`.

    The path is returned whether or not the file exists, so callers decide how to handle a missing one.
    """
    return resource_root() / rel
