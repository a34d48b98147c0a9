"""The local model registry: what is installed under `models/<engine>/<id>/`, and getting more.

`ModelManager.ensure_available(model, level)` is the one call behind switching quantization: it
returns at once when the level is installed, else downloads it (engine/download.py), verifies it,
converts it for MLX, and records it. A folder counts as installed only once its manifest
(`tinychat-model.json`) is written, and that happens last, after every file was verified and moved
into place; anything else in `models/` is a partial download the next attempt resumes.

Only `ensure_available` (for a level that is not installed yet) opens a network connection.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from engine.catalog import Catalog, CatalogEntry, FileSpec
from engine.download import (
    PART_SUFFIX,
    Phase,
    Progress,
    ProgressFn,
    TransferSettings,
    download_snapshot,
    free_bytes,
    human,
)
from engine.types import DownloadCancelled, DownloadError, EngineError, EngineName, ModelFileError, ModelInfo

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
    digest_kind: Literal["sha256", "git-sha1", "none"] = "sha256"


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


def _write_json_atomic(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, ensure_ascii=False)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9._-]+", "-", text.lower()).strip("-._")[:60] or "model"


class ModelManager:
    """Installed models under `root` (normally `app.paths.models_dir()`), and getting catalog levels.

    Not thread-safe: one worker thread drives it; `cancel` Events may be set from any thread.
    `endpoint`/`token` default to `HF_ENDPOINT`/`HF_TOKEN` (or the saved Hugging Face login) at call time.
    """

    def __init__(
        self,
        root: Path,
        catalog: Catalog | None = None,
        *,
        endpoint: str | None = None,
        token: str | bool | None = None,
        settings: TransferSettings | None = None,
        stall_timeout: float = 20.0,
        free_space: Callable[[Path], int] = free_bytes,
    ) -> None:
        self.root = Path(root)
        self.catalog = catalog or Catalog.load()
        self.endpoint, self.token = endpoint, token
        self.settings = settings or TransferSettings()
        self.stall_timeout = stall_timeout
        self.free_space = free_space

    # --- what is on disk -----------------------------------------------------------------------
    def installed(self, *, include_sources: bool = False) -> tuple[InstalledModel, ...]:
        """Every complete model on disk (cheap: reads manifests and file sizes, hashes nothing)."""
        found = []
        for engine in ENGINES:
            base = self.root / engine
            if not base.is_dir():
                continue
            for folder in sorted(base.iterdir()):
                model = self._read_manifest(folder, engine)
                if model is not None and (include_sources or model.kind != "source"):
                    found.append(model)
        return tuple(found)

    def find(self, model: str, level: str) -> InstalledModel | None:
        """The installed copy of a catalog level, if any."""
        entry = self.catalog.get(model, level)
        return self._read_manifest(self._folder(entry.engine, entry.id), entry.engine)

    def disk_usage(self) -> tuple[DiskUsage, ...]:
        """Space each folder under `models/` takes, partial downloads included."""
        usage = []
        for engine in ENGINES:
            base = self.root / engine
            if not base.is_dir():
                continue
            for folder in sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith(".")):
                model = self._read_manifest(folder, engine)
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
            folder = self._folder(engine, item_id)
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
        for f in model.files:
            if f.digest_kind == "none":
                continue
            h = hashlib.sha256() if f.digest_kind == "sha256" else hashlib.sha1(usedforsecurity=False)
            if f.digest_kind == "git-sha1":
                h.update(b"blob %d\0" % f.size)
            with (model.folder / f.name).open("rb") as fh:
                while block := fh.read(1 << 20):
                    if cancel is not None and cancel.is_set():
                        raise DownloadCancelled("Verification cancelled.")
                    h.update(block)
            if h.hexdigest() != f.digest:
                log.warning("%s: %s does not match its recorded digest", model.id, f.name)
                return False
        return True

    # --- getting models ------------------------------------------------------------------------
    def ensure_available(
        self,
        model: str,
        level: str,
        progress: ProgressFn | None = None,
        cancel: threading.Event | None = None,
    ) -> Path:
        """The path of `model` at `level`, downloading (and converting, for MLX) it first if needed.

        Returns at once when already installed, without touching the network. Raises `DownloadError`
        (a sentence for the user), `DownloadCancelled`, or `EngineError` from the MLX converter.
        """
        entry = self.catalog.get(model, level)
        cancel = cancel or threading.Event()
        have = self._read_manifest(self._folder(entry.engine, entry.id), entry.engine)
        if have is not None:
            self._report(progress, "done", entry.label, have.size_bytes)
            return have.path
        with self._exclusive(entry.source_id or entry.id):
            have = self._read_manifest(self._folder(entry.engine, entry.id), entry.engine)
            if have is not None:  # another process finished it while we waited for the lock
                return have.path
            if entry.needs_conversion:
                return self._convert_level(entry, progress, cancel)
            folder = self._folder(entry.engine, entry.id)
            self._report(progress, "metadata", entry.label, 0)
            commit, files = self._download(entry, folder, progress, cancel)
            main = folder / entry.files[0].name
            self._check_gguf(main, downloaded=True)
            self._write_manifest(folder, entry, "catalog", commit, files, main_name=main.name)
        self._report(progress, "done", entry.label, sum(f.size for f in files))
        return main

    def import_gguf(
        self,
        source: Path,
        progress: ProgressFn | None = None,
        cancel: threading.Event | None = None,
        *,
        in_place: bool = False,
    ) -> InstalledModel:
        """Copy a user-picked `.gguf` into `models/llama.cpp/imported-…/` after a child process has
        validated it, or with `in_place` record it where it is (its folder then holds only the manifest,
        and a moved or deleted file is no longer installed). Raises `ModelFileError` with a sentence
        when the file is unusable."""
        from engine.validate import validate_gguf

        source = Path(source)
        cancel = cancel or threading.Event()
        self._report(progress, "verifying", source.name, 0)
        summary = validate_gguf(source)
        size = source.stat().st_size
        needed = (0 if in_place else size) + self.settings.margin_bytes
        folder = self._new_import_folder(source.stem)
        if self.free_space(folder.parent) < needed:
            raise DownloadError(
                f"Not enough disk space to import {source.name}: it needs {human(needed)} free "
                f"(including a safety margin). Free some space and try again.")
        folder.mkdir(parents=True)
        # In place, the manifest names the file by its absolute path (folder / absolute path is that path).
        dest = source.resolve() if in_place else folder / source.name
        part = folder / (source.name + PART_SUFFIX)
        h = hashlib.sha256()
        try:
            with source.open("rb") as src, (contextlib.nullcontext() if in_place else part.open("wb")) as dst:
                done = 0
                while block := src.read(1 << 20):
                    if cancel.is_set():
                        raise DownloadCancelled("Import cancelled. Nothing was added.")
                    if dst is not None:
                        dst.write(block)
                    h.update(block)
                    done += len(block)
                    self._report(progress, "verifying" if in_place else "copying", source.name, done, size)
                if dst is not None:
                    dst.flush()
                    os.fsync(dst.fileno())
            if not in_place:
                os.replace(part, dest)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        label = summary.name or source.stem
        data = {
            "schema": 1, "id": folder.name, "model": _slug(label), "level": summary.quantization,
            "engine": "llama.cpp", "label": label, "kind": "imported", "repo": None, "commit": None,
            "chat_format": "gguf-jinja" if summary.chat_template else "chatml",
            "context": summary.context_length, "main": str(dest) if in_place else dest.name,
            "imported_from": str(source),
            "files": [{"name": str(dest) if in_place else dest.name, "size": size, "digest": h.hexdigest(),
                       "digest_kind": "sha256"}],
        }
        _write_json_atomic(folder / MANIFEST, data)
        self._report(progress, "done", source.name, size, size)
        model = self._read_manifest(folder, "llama.cpp")
        assert model is not None
        return model

    # --- internals -----------------------------------------------------------------------------
    @contextlib.contextmanager
    def _exclusive(self, item_id: str) -> Iterator[None]:
        """One download of a model at a time, across processes (two TinyChat windows would otherwise
        append to the same `.part` file). An OS file lock: released even if the process is killed."""
        lock_dir = self.root / ".locks"
        lock_dir.mkdir(parents=True, exist_ok=True)
        handle = (lock_dir / f"{item_id}.lock").open("a+b")
        try:
            try:
                import fcntl

                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except ImportError:  # Windows
                import msvcrt

                msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        except OSError as exc:
            handle.close()
            raise DownloadError(
                "This model is already being downloaded by another TinyChat window. Wait for it to finish, "
                "or close that window and try again.", repr(exc)) from exc
        try:
            yield
        finally:
            handle.close()  # closing the file releases the lock

    def _folder(self, engine: EngineName, item_id: str) -> Path:
        return self.root / engine / item_id

    def _label_for(self, folder_id: str) -> str:
        for e in self.catalog.entries:
            if folder_id in (e.id, e.source_id):
                return e.label if folder_id == e.id else f"{e.model} (original weights)"
        return folder_id

    def _new_import_folder(self, stem: str) -> Path:
        base = f"imported-{_slug(stem)}"
        folder, n = self._folder("llama.cpp", base), 2
        while folder.exists():
            folder, n = self._folder("llama.cpp", f"{base}-{n}"), n + 1
        return folder

    @staticmethod
    def _report(progress: ProgressFn | None, phase: Phase, name: str, done: int, total: int | None = None) -> None:
        if progress is not None:
            progress(Progress(phase, name, done, done if total is None and phase == "done" else total))

    def _download(
        self, entry: CatalogEntry, folder: Path, progress: ProgressFn | None, cancel: threading.Event,
        *, extra_space: int = 0,
    ) -> tuple[str, tuple[InstalledFile, ...]]:
        """Fetch the entry's files into `folder` (resuming); returns the commit and verified files."""
        from engine.hub import HubSession

        with HubSession(self.endpoint, self.token, stall_timeout=self.stall_timeout) as session:
            snapshot = session.snapshot(entry.repo, entry.revision, [f.name for f in entry.files],
                                        entry.allow_patterns)
            if cancel.is_set():
                raise DownloadCancelled("Download cancelled.")
            expected: dict[str, FileSpec] = {f.name: f for f in entry.files}
            download_snapshot(session, snapshot, folder, progress=progress, cancel=cancel, expected=expected,
                              extra_space=extra_space, settings=self.settings, free_space=self.free_space)
        files = tuple(
            InstalledFile(f.name, f.size, f.sha256 or f.git_blob_id,
                          "sha256" if f.sha256 else "git-sha1" if f.git_blob_id else "none")
            for f in snapshot.files
        )
        return snapshot.commit, files

    def _convert_level(self, entry: CatalogEntry, progress: ProgressFn | None, cancel: threading.Event) -> Path:
        """MLX: download the original snapshot once (kept for other bit widths), then convert it."""
        assert entry.source_id is not None
        src = self._folder(entry.engine, entry.source_id)
        dst = self._folder(entry.engine, entry.id)
        if self._read_manifest(src, entry.engine) is None:
            self._report(progress, "metadata", entry.label, 0)
            commit, files = self._download(entry, src, progress, cancel, extra_space=entry.size_mb * 1_000_000)
            self._write_manifest(src, entry, "source", commit, files, main_name=".")
        source = self._read_manifest(src, entry.engine)
        assert source is not None
        from engine import mlx_convert  # lazy: mlx is only importable where MLX runs

        total = entry.size_mb * 1_000_000

        def on_convert(fraction: float, stage: str) -> None:
            self._report(progress, "converting", stage, int(fraction * total), total)

        bits = None if entry.bits == 16 else entry.bits
        mlx_convert.convert(src, dst, bits, on_convert, cancel)
        files = tuple(InstalledFile(p.name, p.stat().st_size, None, "none")
                      for p in sorted(dst.iterdir()) if p.is_file() and p.name != MANIFEST)
        self._write_manifest(dst, entry, "catalog", source.commit or "", files, main_name=".")
        self._report(progress, "done", entry.label, total, total)
        return dst

    def _check_gguf(self, path: Path, *, downloaded: bool) -> None:
        from engine.validate import validate_gguf

        try:
            validate_gguf(path)
        except ModelFileError as exc:
            if downloaded:
                raise DownloadError(
                    f"The downloaded file matches the Hub's checksum but is not a model TinyChat can run "
                    f"({exc.message}) Update TinyChat or choose another level.", exc.detail) from exc
            raise

    def _write_manifest(self, folder: Path, entry: CatalogEntry, kind: Kind, commit: str,
                        files: tuple[InstalledFile, ...], *, main_name: str) -> None:
        data = {
            "schema": 1, "id": folder.name, "model": entry.model, "level": entry.level, "engine": entry.engine,
            "label": entry.label if kind != "source" else f"{entry.model} (original weights)", "kind": kind,
            "repo": entry.repo, "commit": commit, "chat_format": entry.chat_format, "context": entry.context,
            "main": main_name, "installed_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "files": [{"name": f.name, "size": f.size, "digest": f.digest, "digest_kind": f.digest_kind}
                      for f in files],
        }
        _write_json_atomic(folder / MANIFEST, data)

    def _read_manifest(self, folder: Path, engine: EngineName) -> InstalledModel | None:
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
