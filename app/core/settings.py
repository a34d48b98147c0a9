"""Typed user settings, stored as JSON in the config directory.

Loading never raises: an unreadable file is kept aside as `<name>.bad` and defaults are used; a bad
value is replaced by its default with a log line. Keys this version does not know are kept in
`Settings.extra` and written back, so a newer TinyChat's settings survive a round trip through an older one.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

from engine.types import GenerationParams

log = logging.getLogger(__name__)

SETTINGS_VERSION = 1
EngineChoice = Literal["auto", "mlx", "llama.cpp"]
ContextPolicy = Literal["drop-oldest", "refuse"]
Theme = Literal["system", "light", "dark"]
ENGINES: tuple[str, ...] = ("auto", "mlx", "llama.cpp")
CONTEXT_POLICIES: tuple[str, ...] = ("drop-oldest", "refuse")
THEMES: tuple[str, ...] = ("system", "light", "dark")
DEFAULT_MODEL_ID = "tinyllama-1.1b-chat-v0.4"
DEFAULT_QUANT = "Q4_K_M"
MAX_SYSTEM_PROMPT = 20_000
CUSTOM_PRESET = "Custom"


class SettingsError(Exception):
    """Settings could not be saved; `message` is a sentence for the user, `detail` goes to the log."""

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail


_ENGINE_DEFAULTS = GenerationParams()


@dataclass(frozen=True)
class Sampling:
    """How an answer is sampled (defaults: the engine's own). `max_tokens` is the number of new tokens at most."""

    temperature: float = _ENGINE_DEFAULTS.temperature
    top_p: float = _ENGINE_DEFAULTS.top_p
    top_k: int = _ENGINE_DEFAULTS.top_k
    repeat_penalty: float = _ENGINE_DEFAULTS.repeat_penalty
    max_tokens: int = _ENGINE_DEFAULTS.max_tokens
    seed: int | None = _ENGINE_DEFAULTS.seed

    def to_params(self, stop: tuple[str, ...] = ()) -> GenerationParams:
        """The engine's request parameters for these settings."""
        return GenerationParams(
            max_tokens=self.max_tokens,
            temperature=self.temperature,
            top_p=self.top_p,
            top_k=self.top_k,
            repeat_penalty=self.repeat_penalty,
            seed=self.seed,
            stop=stop,
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: object, warnings: list[str] | None = None) -> Sampling:
        """Build from a decoded JSON object; each bad or missing value falls back to its default."""
        base = cls()
        if not isinstance(data, dict):
            if data is not None:
                _warn(warnings, "sampling", data)
            return base
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name not in data:
                continue
            checked = _SAMPLING_CHECKS[f.name](data[f.name])
            if checked is _BAD:
                _warn(warnings, f"sampling.{f.name}", data[f.name])
            else:
                values[f.name] = checked
        return replace(base, **values)


PRESETS: dict[str, Sampling] = {
    "Precise": Sampling(temperature=0.2, top_p=0.9, top_k=20, repeat_penalty=1.15),
    "Balanced": Sampling(),
    "Creative": Sampling(temperature=1.0, top_p=0.98, top_k=80, repeat_penalty=1.05),
}
DEFAULT_PRESET = "Balanced"


def preset_name_for(sampling: Sampling) -> str:
    """The preset these values match (ignoring length and seed), or "Custom"."""
    for name, preset in PRESETS.items():
        if replace(sampling, max_tokens=preset.max_tokens, seed=preset.seed) == preset:
            return name
    return CUSTOM_PRESET


@dataclass(frozen=True)
class Settings:
    """Everything the user can set. `extra` holds keys from a newer version, kept on save."""

    engine: EngineChoice = "auto"
    model_id: str = DEFAULT_MODEL_ID
    quant: str = DEFAULT_QUANT
    chat_format: str | None = None  # None: the model's own trained format
    system_prompt: str = ""
    sampling_preset: str = DEFAULT_PRESET
    sampling: Sampling = field(default_factory=Sampling)
    context_policy: ContextPolicy = "drop-oldest"
    n_threads: int | None = None  # None: the engine picks (physical cores)
    theme: Theme = "system"
    font_size: int = 11
    airplane_mode: bool = False  # why off by default: docs/user-guide.md, "Airplane mode"
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def generation_params(self) -> GenerationParams:
        """What the engine gets for the next answer: sampling plus the context policy."""
        return replace(self.sampling.to_params(), forget_oldest=self.context_policy == "drop-oldest")

    def with_preset(self, name: str) -> Settings:
        """These settings with a named sampling preset applied (length and seed are kept)."""
        preset = PRESETS[name]
        sampling = replace(preset, max_tokens=self.sampling.max_tokens, seed=self.sampling.seed)
        return replace(self, sampling_preset=name, sampling=sampling)

    def to_json(self) -> dict[str, Any]:
        """The JSON object written to disk (unknown keys first, so known ones always win)."""
        data: dict[str, Any] = dict(self.extra)
        data["version"] = SETTINGS_VERSION
        for f in fields(self):
            if f.name == "extra":
                continue
            value = getattr(self, f.name)
            data[f.name] = value.to_json() if isinstance(value, Sampling) else value
        return data


# --- value checks: each returns the cleaned value, or _BAD -------------------------------------------

_BAD = object()


def _number(lo: float, hi: float) -> Callable[[object], object]:
    def check(v: object) -> object:
        if isinstance(v, bool) or not isinstance(v, int | float) or v != v:
            return _BAD
        return float(v) if lo <= v <= hi else _BAD

    return check


def _integer(lo: int, hi: int, optional: bool = False) -> Callable[[object], object]:
    def check(v: object) -> object:
        if v is None and optional:
            return None
        if isinstance(v, bool) or not isinstance(v, int):
            return _BAD
        return v if lo <= v <= hi else _BAD

    return check


def _choice(options: tuple[str, ...]) -> Callable[[object], object]:
    return lambda v: v if v in options else _BAD


def _text(max_len: int, optional: bool = False, nonempty: bool = False) -> Callable[[object], object]:
    def check(v: object) -> object:
        if v is None and optional:
            return None
        if not isinstance(v, str) or len(v) > max_len or (nonempty and not v.strip()):
            return _BAD
        return v

    return check


_SAMPLING_CHECKS: dict[str, Callable[[object], object]] = {
    "temperature": _number(0.0, 2.0),
    "top_p": _number(0.01, 1.0),
    "top_k": _integer(0, 1000),
    "repeat_penalty": _number(0.5, 2.0),
    "max_tokens": _integer(1, 2048),
    "seed": _integer(0, 2**32 - 1, optional=True),
}

_CHECKS: dict[str, Callable[[object], object]] = {
    "engine": _choice(ENGINES),
    "model_id": _text(200, nonempty=True),
    "quant": _text(32, nonempty=True),
    "chat_format": _text(64, optional=True, nonempty=True),
    "system_prompt": _text(MAX_SYSTEM_PROMPT),
    "sampling_preset": _choice((*PRESETS, CUSTOM_PRESET)),
    "context_policy": _choice(CONTEXT_POLICIES),
    "n_threads": _integer(1, 256, optional=True),
    "theme": _choice(THEMES),
    "font_size": _integer(6, 48),
    "airplane_mode": lambda v: v if isinstance(v, bool) else _BAD,
}


def _warn(warnings: list[str] | None, key: str, value: object) -> None:
    shown = repr(value)
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    log.warning("Setting %s has an invalid value %s; using the default", key, shown)
    if warnings is not None:
        warnings.append(f"The setting “{key}” had an invalid value and was reset to its default.")


def settings_from_json(data: dict[str, Any], warnings: list[str] | None = None) -> Settings:
    """Build settings from a decoded JSON object, replacing each bad value by its default."""
    values: dict[str, Any] = {}
    for name, check in _CHECKS.items():
        if name in data:
            checked = check(data[name])
            if checked is _BAD:
                _warn(warnings, name, data[name])
            else:
                values[name] = checked
    values["sampling"] = Sampling.from_json(data.get("sampling"), warnings)
    known = {f.name for f in fields(Settings)} | {"version"}
    values["extra"] = {k: v for k, v in data.items() if k not in known}
    return Settings(**values)


def _keep_aside(path: Path) -> Path | None:
    """Move an unreadable settings file to `<name>.bad` (timestamped if one already exists)."""
    target = path.with_name(path.name + ".bad")
    if target.exists():
        target = path.with_name(f"{path.name}.{time.strftime('%Y%m%d-%H%M%S')}.bad")
    try:
        os.replace(path, target)
    except OSError as exc:
        log.warning("Could not move the unreadable settings file %s aside: %s", path, exc)
        return None
    return target


def load_settings(path: Path) -> tuple[Settings, list[str]]:
    """Read settings; never raises. Returns the settings and sentences to show the user (may be empty)."""
    warnings: list[str] = []
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return Settings(), warnings
    except OSError as exc:
        log.warning("Cannot read settings %s: %s", path, exc)
        warnings.append(f"Your settings could not be read ({exc.strerror}); TinyChat is using defaults.")
        return Settings(), warnings
    try:
        data = json.loads(raw.decode("utf-8"))
        if not isinstance(data, dict):
            raise ValueError("the file does not hold a JSON object")
    except (ValueError, RecursionError) as exc:
        log.warning("Settings file %s is unreadable: %s", path, exc)
        moved = _keep_aside(path)
        where = f" The old file was kept as {moved}." if moved else ""
        warnings.append(f"Your settings file was damaged, so TinyChat is using defaults.{where}")
        return Settings(), warnings
    try:
        return settings_from_json(data, warnings), warnings
    except Exception:  # last resort: a settings bug must never stop the app from starting
        log.exception("Unexpected error while reading settings %s", path)
        warnings.append("Some settings could not be read; TinyChat is using defaults.")
        return Settings(), warnings


def save_settings(settings: Settings, path: Path) -> None:
    """Write settings atomically (temp file, fsync, `os.replace`): a crash leaves the old or the new
    file, never half of one. Raises `SettingsError` if the disk refuses the write."""
    text = json.dumps(settings.to_json(), indent=2, ensure_ascii=False, sort_keys=True) + "\n"
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        tmp = None
        _fsync_dir(path.parent)
    except OSError as exc:
        log.error("Saving settings to %s failed: %s", path, exc)
        raise SettingsError(
            f"Your settings could not be saved ({exc.strerror or exc}). Check that {path.parent} "
            "is writable and the disk is not full, then try again.",
            detail=repr(exc),
        ) from exc
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def _fsync_dir(directory: Path) -> None:
    """Make the rename itself durable (POSIX); Windows cannot open directories, and does not need to."""
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
