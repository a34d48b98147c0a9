"""Measured figures of quantization levels, kept in the data folder (`level-measurements.json`).

A figure holds only under the conditions it was measured in, so each is kept under the key (model file,
engine build, CPU, threads): the file by its sha256 where the manifest has one (downloads and imports),
else by name, size and modification time (MLX conversions). Re-measuring replaces the figure under the
same key; a change of TinyChat's llama.cpp, of the computer or of the thread setting shows the level as
not measured yet. A damaged file is set aside and the store starts empty: figures can be measured again.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from dataclasses import asdict
from pathlib import Path
from typing import Any

from engine.level_bench import LevelFigures, Speed, file_identity
from engine.level_quality import Quality
from engine.model_inventory import InstalledModel, write_json_atomic

log = logging.getLogger(__name__)

RESULTS_FILE = "level-measurements.json"
SCHEMA = 1


def model_identity(model: InstalledModel) -> str:
    """What names an installed model's bytes: its main file's sha256 when recorded, else its files'
    names, sizes and modification times."""
    if model.path.is_file():
        main = next((f for f in model.files if model.folder / f.name == model.path), None)
        if main is not None and main.digest_kind == "sha256" and main.digest:
            return f"sha256:{main.digest}"
    return file_identity(model.path)


def measurement_key(identity: str, engine_build: str, cpu: str, threads: int) -> str:
    """The conditions a figure holds under, as one string."""
    return json.dumps([identity, engine_build, cpu, threads])


def figures_from_json(data: dict[str, Any]) -> LevelFigures:
    """The inverse of `dataclasses.asdict` for LevelFigures (JSON lists back to tuples)."""
    speed = {k: tuple(v) if isinstance(v, list) else v for k, v in data["speed"].items()}
    quality = None
    if data.get("quality") is not None:
        quality = Quality(**{k: tuple(v) if isinstance(v, list) else v for k, v in data["quality"].items()})
    return LevelFigures(**{**data, "speed": Speed(**speed), "quality": quality})


class LevelResults:
    """The figures file. Thread-safe: the GUI reads while a background measurement writes."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def _read(self) -> dict[str, dict[str, Any]]:
        try:
            doc = json.loads(self.path.read_text(encoding="utf-8"))
            if not isinstance(doc, dict) or doc.get("schema") != SCHEMA or not isinstance(doc.get("figures"), dict):
                raise ValueError("not a measurements file of this version")
            return doc["figures"]
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as e:
            aside = self.path.with_name(self.path.name + ".damaged")
            log.warning("setting aside unreadable %s as %s: %r", self.path, aside, e)
            with contextlib.suppress(OSError):
                self.path.replace(aside)
            return {}

    def put(self, identity: str, figures: LevelFigures) -> None:
        """Keep `figures` of the file `identity`, replacing any under the same conditions."""
        key = measurement_key(identity, figures.engine_build, figures.cpu, figures.threads)
        with self._lock:
            data = self._read()
            data[key] = asdict(figures)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_json_atomic(self.path, {"schema": SCHEMA, "figures": data})

    def get(self, identity: str, engine_build: str, cpu: str, threads: int) -> LevelFigures | None:
        """The figures of file `identity` measured under exactly these conditions, if any."""
        with self._lock:
            raw = self._read().get(measurement_key(identity, engine_build, cpu, threads))
        if raw is None:
            return None
        try:
            return figures_from_json(raw)
        except (TypeError, KeyError, ValueError) as e:  # written by another version: measure again
            log.warning("ignoring unreadable figures for %s: %r", identity, e)
            return None

    def forget(self, identity: str) -> int:
        """Drop every figure of file `identity` (the file was removed); returns how many."""
        with self._lock:
            data = self._read()
            keep = {k: v for k, v in data.items() if json.loads(k)[0] != identity}
            if len(keep) != len(data):
                write_json_atomic(self.path, {"schema": SCHEMA, "figures": keep})
        return len(data) - len(keep)
