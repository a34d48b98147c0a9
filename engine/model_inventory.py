"""What is installed under `models/<engine>/<id>/`: manifests, verification, deletion and disk use.

A folder counts as installed only once its manifest (`tinychat-model.json`) is written, and that
happens last, after every file was verified and moved into place (engine/model_installer.py);
anything else in `models/` is a partial download the next attempt resumes. Nothing here opens a
network connection.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from engine.catalog import Catalog
from engine.file_hash import DigestKind, new_hasher, stream_file
from engine.types import DownloadCancelled, EngineError, EngineName, ModelInfo

log = logging.getLogger(__name__)

MANIFEST = "tinychat-model.json"
ENGINES: tuple[EngineName, ...] = ("llama.cpp", "mlx")
Kind = Literal["catalog", "imported", "source"]
_SAFE_ID = re.compile(r"[a-z0-9][a-z0-9._-]*")


@dataclass(frozen=True)
class InstalledFile:
    """A file of an installed model and the digest it was verified against (sha256, or git blob id)."""

    name: str
    size: int
    digest: str | None
    digest_kind: DigestKind = "sha256"


@dataclass(frozen=True)
class InstalledModel:
    """A model on disk the app can load (`kind` catalog/imported), or an MLX source snapshot (`source`).
    `path` is the GGUF file for llama.cpp and the model folder for MLX."""

    id: str
    model: str
    level: str
    engine: EngineName
    label: str
    kind: Kind
    folder: Path
    path: Path
    size_bytes: int
    chat_format: str
    context: int
    repo: str | None
    commit: str | None
    files: tuple[InstalledFile, ...]

    def model_info(self) -> ModelInfo:
        """What the engine needs to load this model."""
        return ModelInfo(path=self.path, engine=self.engine, model_id=self.model, quant=self.level,
                         chat_format=self.chat_format, n_ctx=self.context, label=self.label)


@dataclass(frozen=True)
class DiskUsage:
    """Space one folder under `models/` takes. `state`: installed, source (an MLX original kept for
    converting other levels) or partial (an unfinished download that will resume)."""

    id: str
    engine: EngineName
    label: str
    bytes: int
    state: Literal["installed", "source", "partial"]


def write_json_atomic(path: Path, data: dict) -> None:
    """Write `data` as JSON so that a crash leaves the old file or the new one, never half of one."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, ensure_ascii=False)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def slug(text: str) -> str:
    """`text` as a safe folder or model id: lower case, [a-z0-9._-], at most 60 characters."""
    return re.sub(r"[^a-z0-9._-]+", "-", text.lower()).strip("-._")[:60] or "model"


class ModelInventory:
    """The models under `root` (normally `app.paths.models_dir()`), read from their manifests."""

    def __init__(self, root: Path, catalog: Catalog | None = None) -> None:
        self.root = Path(root)
        self.catalog = catalog or Catalog.load()

    def installed(self, *, include_sources: bool = False) -> tuple[InstalledModel, ...]:
        """Every complete model on disk (cheap: reads manifests and file sizes, hashes nothing)."""
        found = []
        for engine, folder in self._folders():
            model = self.read_manifest(folder, engine)
            if model is not None and (include_sources or model.kind != "source"):
                found.append(model)
        return tuple(found)

    def find(self, model: str, level: str) -> InstalledModel | None:
        """The installed copy of a catalog level, if any: the downloaded one, else an imported file
        recognised as that level."""
        entry = self.catalog.get(model, level)
        found = self.read_manifest(self.folder(entry.engine, entry.id), entry.engine)
        if found is not None:
            return found
        return next((m for m in self.installed() if m.kind == "imported" and m.engine == entry.engine
                     and m.model == entry.model and m.level.lower() == entry.level.lower()), None)

    def disk_usage(self) -> tuple[DiskUsage, ...]:
        """Space each folder under `models/` takes, partial downloads included."""
        usage = []
        for engine, folder in self._folders():
            model = self.read_manifest(folder, engine)
            if model is None:
                usage.append(DiskUsage(folder.name, engine, self._label_for(folder.name), _folder_bytes(folder),
                                       "partial"))
            else:
                state = "source" if model.kind == "source" else "installed"
                usage.append(DiskUsage(model.id, engine, model.label, _folder_bytes(folder), state))
        return tuple(usage)

    def delete(self, item_id: str) -> int:
        """Remove a model, source snapshot or partial download by id; returns the bytes freed."""
        if not _SAFE_ID.fullmatch(item_id):
            raise EngineError(f"There is no model called {item_id!r}.")
        for engine in ENGINES:
            folder = self.folder(engine, item_id)
            if folder.is_dir():
                freed = _folder_bytes(folder)
                # Drop the manifest first: a crash mid-delete leaves a "partial" folder, never a broken model.
                (folder / MANIFEST).unlink(missing_ok=True)
                shutil.rmtree(folder)
                log.info("deleted %s (%d bytes)", folder, freed)
                return freed
        raise EngineError(f"There is no model called {item_id!r}.")

    def verify(self, item_id: str, cancel: threading.Event | None = None) -> bool:
        """Re-hash every file of an installed model against its manifest (slow: reads every byte)."""
        model = next((m for m in self.installed(include_sources=True) if m.id == item_id), None)
        if model is None:
            raise EngineError(f"There is no model called {item_id!r}.")

        def check_cancel() -> None:
            if cancel is not None and cancel.is_set():
                raise DownloadCancelled("Verification cancelled.")

        for f in model.files:
            if f.digest_kind == "none":
                continue
            digest = stream_file(model.folder / f.name, new_hasher(f.digest_kind, f.size), check_cancel=check_cancel)
            if digest != f.digest:
                log.warning("%s: %s does not match its recorded digest", model.id, f.name)
                return False
        return True

    # --- for the installer -----------------------------------------------------------------------
    def folder(self, engine: EngineName, item_id: str) -> Path:
        """Where the model `item_id` of `engine` lives (whether or not it exists)."""
        return self.root / engine / item_id

    def new_import_folder(self, stem: str) -> Path:
        """A folder name for an imported file that no model uses yet (not created)."""
        base = f"imported-{slug(stem)}"
        folder, n = self.folder("llama.cpp", base), 2
        while folder.exists():
            folder, n = self.folder("llama.cpp", f"{base}-{n}"), n + 1
        return folder

    def write_manifest(self, folder: Path, fields: dict[str, Any], files: tuple[InstalledFile, ...]) -> None:
        """Record `folder` as installed: `fields` (model, level, engine, label, kind, repo, commit,
        chat_format, context, main, ...) plus the verified `files`. Written atomically, last."""
        data = {"schema": 1, "id": folder.name, **fields, "installed_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "files": [{"name": f.name, "size": f.size, "digest": f.digest, "digest_kind": f.digest_kind}
                          for f in files]}
        write_json_atomic(folder / MANIFEST, data)

    def read_manifest(self, folder: Path, engine: EngineName) -> InstalledModel | None:
        """The folder's model if its manifest is readable and every file has its recorded size."""
        path = folder / MANIFEST
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            files = tuple(InstalledFile(f["name"], int(f["size"]), f.get("digest"), f.get("digest_kind", "sha256"))
                          for f in data["files"])
            for f in files:
                if (folder / f.name).stat().st_size != f.size:
                    log.warning("%s: %s has the wrong size; treating the model as not installed", folder, f.name)
                    return None
            main = folder if data["main"] == "." else folder / data["main"]
            return InstalledModel(
                id=folder.name, model=data["model"], level=data["level"], engine=engine, label=data["label"],
                kind=data["kind"], folder=folder, path=main, size_bytes=sum(f.size for f in files),
                chat_format=data["chat_format"], context=int(data["context"]), repo=data.get("repo"),
                commit=data.get("commit"), files=files,
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring %s: unreadable manifest (%r)", folder, exc)
            return None

    def _folders(self) -> list[tuple[EngineName, Path]]:
        """Every model folder on disk, engine by engine, in name order (hidden ones, like `.locks`, skipped)."""
        return [(engine, folder) for engine in ENGINES if (self.root / engine).is_dir()
                for folder in sorted((self.root / engine).iterdir())
                if folder.is_dir() and not folder.name.startswith(".")]

    def _label_for(self, folder_id: str) -> str:
        for e in self.catalog.entries:
            if folder_id in (e.id, e.source_id):
                return e.label if folder_id == e.id else f"{e.model} (original weights)"
        return folder_id
