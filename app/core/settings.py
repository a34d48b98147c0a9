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
from typing import Any, ClassVar, Literal, Self

from app.core.setting_checks import BAD, choice, flag, integer, nested_from_json, number, text, warn
from engine.types import DEFAULT_STATE_DISK_CAP, GenerationParams

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
MIB = 2**20
MAX_STATES_CAP_MB = 1_000_000  # about a terabyte: anything a disk holds


class SettingsError(Exception):
    """Settings could not be saved; `message` is a sentence for the user, `detail` goes to the log."""

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail


class _Group:
    """A group of settings stored as one JSON object under `KEY`; each bad or missing value of it falls
    back to its default on load."""

    KEY: ClassVar[str] = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_json(cls, data: object, warnings: list[str] | None = None) -> Self:
        """Build from a decoded JSON object; each bad or missing value falls back to its default."""
        return nested_from_json(cls, data, _GROUP_CHECKS[cls.KEY], cls.KEY, warnings)


_ENGINE_DEFAULTS = GenerationParams()


@dataclass(frozen=True)
class Sampling(_Group):
    """How an answer is sampled (defaults: the engine's own). `max_tokens` is the number of new tokens at most."""

    KEY: ClassVar[str] = "sampling"

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


@dataclass(frozen=True)
class ServeSettings(_Group):
    """"Serve on this computer": the OpenAI-compatible API, off by default, on 127.0.0.1 unless the user
    lets other computers in (`lan`), which needs an API key."""

    KEY: ClassVar[str] = "serve"

    enabled: bool = False
    port: int = 8080
    lan: bool = False
    api_key: str = ""


@dataclass(frozen=True)
class RemoteSettings(_Group):
    """Answer with a model on another OpenAI-compatible server (`url` ends in /v1; `model` empty: the
    server's first) instead of one on this computer. Off unless the user turns it on."""

    KEY: ClassVar[str] = "remote"

    enabled: bool = False
    url: str = ""
    api_key: str = ""
    model: str = ""


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
    serve: ServeSettings = field(default_factory=ServeSettings)
    remote: RemoteSettings = field(default_factory=RemoteSettings)
    airplane_mode: bool = False  # why off by default: docs/user-guide.md, "Airplane mode"
    saved_states_cap_mb: int = DEFAULT_STATE_DISK_CAP // MIB  # 0: no conversation states kept on disk
    prompt_lookup: bool = True  # why on by default: docs/benchmarks.md, "Resuming conversations and prompt lookup"
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def generation_params(self) -> GenerationParams:
        """What the engine gets for the next answer: sampling, the context policy and prompt lookup."""
        return replace(self.sampling.to_params(), forget_oldest=self.context_policy == "drop-oldest",
                       prompt_lookup=None if self.prompt_lookup else False)  # on: where it pays

    @property
    def saved_states_cap(self) -> int:
        """The saved-state folder's cap in bytes."""
        return self.saved_states_cap_mb * MIB

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
            data[f.name] = value.to_json() if isinstance(value, _Group) else value
        return data


_SAMPLING_CHECKS: dict[str, Callable[[object], object]] = {
    "temperature": number(0.0, 2.0),
    "top_p": number(0.01, 1.0),
    "top_k": integer(0, 1000),
    "repeat_penalty": number(0.5, 2.0),
    "max_tokens": integer(1, 2048),
    "seed": integer(0, 2**32 - 1, optional=True),
}

_SERVE_CHECKS: dict[str, Callable[[object], object]] = {
    "enabled": flag, "port": integer(0, 65535), "lan": flag, "api_key": text(200),
}

_REMOTE_CHECKS: dict[str, Callable[[object], object]] = {
    "enabled": flag, "url": text(2000), "api_key": text(500), "model": text(200),
}

_GROUP_CHECKS: dict[str, dict[str, Callable[[object], object]]] = {
    "sampling": _SAMPLING_CHECKS, "serve": _SERVE_CHECKS, "remote": _REMOTE_CHECKS}

_CHECKS: dict[str, Callable[[object], object]] = {
    "engine": choice(ENGINES),
    "model_id": text(200, nonempty=True),
    "quant": text(32, nonempty=True),
    "chat_format": text(64, optional=True, nonempty=True),
    "system_prompt": text(MAX_SYSTEM_PROMPT),
    "sampling_preset": choice((*PRESETS, CUSTOM_PRESET)),
    "context_policy": choice(CONTEXT_POLICIES),
    "n_threads": integer(1, 256, optional=True),
    "theme": choice(THEMES),
    "font_size": integer(6, 48),
    "airplane_mode": flag,
    "saved_states_cap_mb": integer(0, MAX_STATES_CAP_MB),
    "prompt_lookup": flag,
}


def settings_from_json(data: dict[str, Any], warnings: list[str] | None = None) -> Settings:
    """Build settings from a decoded JSON object, replacing each bad value by its default."""
    values: dict[str, Any] = {}
    for name, check in _CHECKS.items():
        if name in data:
            checked = check(data[name])
            if checked is BAD:
                warn(warnings, name, data[name])
            else:
                values[name] = checked
    values["sampling"] = Sampling.from_json(data.get("sampling"), warnings)
    values["serve"] = ServeSettings.from_json(data.get("serve"), warnings)
    values["remote"] = RemoteSettings.from_json(data.get("remote"), warnings)
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
