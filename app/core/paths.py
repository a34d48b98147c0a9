"""Where TinyChat keeps its files: platformdirs locations, or one private tree under `TINYCHAT_HOME`.

Every function tries to create its directory on first use, so callers can usually write straight into
it. On a read-only or full disk the directory may stay missing: the path is still returned (reading may
work) and whoever writes there reports the failure in its own words.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import platformdirs

log = logging.getLogger(__name__)

APP_NAME = "TinyChat"
HOME_ENV = "TINYCHAT_HOME"
DB_FILENAME = "tinychat.db"
SETTINGS_FILENAME = "settings.json"


def _home() -> Path | None:
    """The private tree named by `TINYCHAT_HOME`, if set (tests, portable installs, the self-test)."""
    value = os.environ.get(HOME_ENV, "").strip()
    return Path(value).expanduser().resolve() if value else None


def _ensure(path: Path) -> Path:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        log.warning("Cannot create the folder %s: %s", path, exc)
    return path


def _pick(sub: str, platform_path: Path) -> Path:
    home = _home()
    return _ensure(home / sub if home else platform_path)


def data_dir() -> Path:
    """Conversations database and models."""
    # appauthor=False: no "TinyChat/TinyChat" nesting on Windows.
    return _pick("data", platformdirs.user_data_path(APP_NAME, appauthor=False))


def config_dir() -> Path:
    """Settings file."""
    return _pick("config", platformdirs.user_config_path(APP_NAME, appauthor=False))


def cache_dir() -> Path:
    """Files that can be rebuilt at any time."""
    return _pick("cache", platformdirs.user_cache_path(APP_NAME, appauthor=False))


def log_dir() -> Path:
    """Rotating log files."""
    return _pick("logs", platformdirs.user_log_path(APP_NAME, appauthor=False))


def models_dir() -> Path:
    """Downloaded and converted models: `models/<engine>/<id>/`."""
    return _ensure(data_dir() / "models")


def db_path() -> Path:
    """The SQLite conversation store."""
    return data_dir() / DB_FILENAME


def settings_path() -> Path:
    """The JSON settings file."""
    return config_dir() / SETTINGS_FILENAME


def states_dir() -> Path:
    """Saved conversation states (the engine's state cache): rebuilt by answering, so in the cache folder."""
    return cache_dir() / "states"
