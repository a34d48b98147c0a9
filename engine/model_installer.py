"""Getting models onto disk: catalog downloads, MLX conversion, and importing a user's GGUF file.

`ModelInstaller.ensure_available(model, level)` is the one call behind switching quantization: it
returns at once when the level is installed, else downloads it (engine/download.py), verifies it,
converts it for MLX, and records it in the inventory (engine/model_inventory.py). Only that call
(for a level that is not installed yet) opens a network connection. One download of a model at a
time, across processes, is guaranteed by an OS file lock.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict, Unpack

from engine import network_log
from engine.catalog import CatalogEntry, CatalogError, FileSpec
from engine.download import TransferSettings, download_snapshot
from engine.file_hash import stream_file
from engine.model_inventory import MANIFEST, InstalledFile, InstalledModel, Kind, ModelInventory
from engine.part_files import PART_SUFFIX, free_bytes, part_bytes
from engine.progress import ProgressFn, human, report
from engine.types import DownloadCancelled, DownloadError, ModelFileError

if TYPE_CHECKING:
    from engine.validate import GgufSummary

log = logging.getLogger(__name__)


class InstallerOptions(TypedDict, total=False):
    """How an installer reaches the Hub and the disk; tests point it at a fake Hub and shrink the timings."""

    endpoint: str | None  # default: HF_ENDPOINT, else the Hub
    token: str | bool | None  # default: HF_TOKEN, else the saved Hugging Face login
    settings: TransferSettings | None
    stall_timeout: float  # seconds without a byte before a connection counts as stalled
    free_space: Callable[[Path], int]


class ModelInstaller:
    """Adds models to `inventory`. Not thread-safe: one worker thread drives it; `cancel` Events may be
    set from any thread."""

    def __init__(self, inventory: ModelInventory, **options: Unpack[InstallerOptions]) -> None:
        self.inventory = inventory
        self.endpoint, self.token = options.get("endpoint"), options.get("token")
        self.settings = options.get("settings") or TransferSettings()
        self.stall_timeout = options.get("stall_timeout", 20.0)
        self.free_space = options.get("free_space", free_bytes)

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
        inv = self.inventory
        entry = inv.catalog.get(model, level)
        cancel = cancel or threading.Event()
        folder = inv.folder(entry.engine, entry.id)
        have = inv.read_manifest(folder, entry.engine)
        if have is not None:
            report(progress, "done", entry.label, have.size_bytes)
            return have.path
        with self.exclusive(entry.source_id or entry.id):
            have = inv.read_manifest(folder, entry.engine)
            if have is not None:  # another process finished it while we waited for the lock
                return have.path
            if entry.needs_conversion:
                return self._convert_level(entry, progress, cancel)
            report(progress, "metadata", entry.label, 0)
            commit, files = self._download(entry, folder, progress, cancel)
            main = folder / entry.files[0].name
            self._check_downloaded_gguf(main)
            self._record(folder, entry, "catalog", commit, files, main_name=main.name)
        report(progress, "done", entry.label, sum(f.size for f in files))
        return main

    def import_gguf(
        self,
        source: Path,
        progress: ProgressFn | None = None,
        cancel: threading.Event | None = None,
        *,
        in_place: bool = False,
    ) -> InstalledModel:
        """Add a user-picked `.gguf` after a child process has validated it: copied into
        `models/llama.cpp/imported-…/`, or with `in_place` recorded where it is (hashed, not copied; the
        file must then stay there). A file the catalog recognises (engine/catalog.py `match_gguf`) is
        recorded as that model at its level; any other gets an entry of its own. Raises
        `ModelFileError` with a sentence when the file is unusable."""
        from engine.validate import validate_gguf

        source = Path(source).resolve() if in_place else Path(source)
        cancel = cancel or threading.Event()
        report(progress, "verifying", source.name, 0)
        summary = validate_gguf(source)
        size = source.stat().st_size
        folder = self.inventory.new_import_folder(source.stem)
        needed = (0 if in_place else size) + self.settings.margin_bytes
        if self.free_space(folder.parent) < needed:
            raise DownloadError(
                f"Not enough disk space to import {source.name}: it needs {human(needed)} free "
                f"(including a safety margin). Free some space and try again.")
        folder.mkdir(parents=True)
        try:
            dest, digest = self._take_file(source, folder, size, in_place, progress, cancel)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        self.inventory.write_manifest(folder, {
            **self._identity(summary, source, folder), "engine": "llama.cpp", "kind": "imported",
            "repo": None, "commit": None, "main": str(dest) if in_place else dest.name,
            "imported_from": str(source),
        }, (InstalledFile(str(dest) if in_place else dest.name, size, digest, "sha256"),))
        report(progress, "done", source.name, size, size)
        model = self.inventory.read_manifest(folder, "llama.cpp")
        assert model is not None
        return model

    def _identity(self, summary: GgufSummary, source: Path, folder: Path) -> dict[str, object]:
        """Who an imported file is: the catalog level it is recognised as, else a model of its own
        (named by its folder, so two unrelated files never share an entry) at the level it declares."""
        if summary.catalog_id is not None:
            try:
                e = self.inventory.catalog.by_id(summary.catalog_id)
                return {"model": e.model, "level": e.level, "label": e.label, "chat_format": e.chat_format,
                        "context": e.context}
            except CatalogError:  # recognised by another catalog version: fall through to its own entry
                pass
        # The name comes from the file: only printable characters reach a label (and a terminal).
        name = "".join(ch for ch in (summary.name or source.stem) if ch.isprintable()) or source.stem
        return {"model": folder.name, "level": summary.quantization, "label": f"{name} · {summary.quantization}",
                "chat_format": "gguf-jinja" if summary.chat_template else "chatml",
                "context": summary.context_length}

    @staticmethod
    def _take_file(source: Path, folder: Path, size: int, in_place: bool, progress: ProgressFn | None,
                   cancel: threading.Event) -> tuple[Path, str]:
        """Copy `source` into `folder` (or only hash it, `in_place`); returns where it is and its sha256."""
        done = 0

        def check_cancel() -> None:
            if cancel.is_set():
                raise DownloadCancelled("Import cancelled. Nothing was added.")

        def on_block(n: int) -> None:
            nonlocal done
            done += n
            report(progress, "verifying" if in_place else "copying", source.name, done, size)

        if in_place:
            return source, stream_file(source, hashlib.sha256(), check_cancel=check_cancel, on_block=on_block)
        dest = folder / source.name
        part = folder / (source.name + PART_SUFFIX)
        with part.open("wb") as dst:
            digest = stream_file(source, hashlib.sha256(), check_cancel=check_cancel, on_block=on_block, copy_to=dst)
            dst.flush()
            os.fsync(dst.fileno())
        os.replace(part, dest)
        return dest, digest

    @contextlib.contextmanager
    def exclusive(self, item_id: str) -> Iterator[None]:
        """One download of a model at a time, across processes (two TinyChat windows would otherwise
        append to the same `.part` file). An OS file lock: released even if the process is killed."""
        lock_dir = self.inventory.root / ".locks"
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

    # --- internals -----------------------------------------------------------------------------
    def _download(
        self, entry: CatalogEntry, folder: Path, progress: ProgressFn | None, cancel: threading.Event,
        *, extra_space: int = 0,
    ) -> tuple[str, tuple[InstalledFile, ...]]:
        """Fetch the entry's files into `folder` (resuming); returns the commit and verified files."""
        from engine.hub import HubSession

        network_log.require_network(entry.label)
        with network_log.purpose("Model download", entry.label), \
                HubSession(self.endpoint, self.token, stall_timeout=self.stall_timeout) as session:
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
        """MLX: download the original snapshot once (kept for other bit widths), then convert it. Progress
        during the conversion counts through the original's real size; a cancel is a `DownloadCancelled`
        like any other, and leaves the original in place."""
        assert entry.source_id is not None
        inv = self.inventory
        src = inv.folder(entry.engine, entry.source_id)
        dst = inv.folder(entry.engine, entry.id)
        if inv.read_manifest(src, entry.engine) is None:
            report(progress, "metadata", entry.label, 0)
            commit, files = self._download(entry, src, progress, cancel, extra_space=entry.size_mb * 1_000_000)
            self._record(src, entry, "source", commit, files, main_name=".")
        source = inv.read_manifest(src, entry.engine)
        assert source is not None
        from engine import mlx_convert  # lazy: mlx is only importable where MLX runs

        total = source.size_bytes

        def on_convert(fraction: float, stage: str) -> None:
            report(progress, "converting", stage, int(fraction * total), total)

        bits = None if entry.bits == 16 else entry.bits
        try:
            mlx_convert.convert(src, dst, bits, on_convert, cancel)
        except mlx_convert.ConversionCancelled as exc:
            raise DownloadCancelled("Conversion cancelled. The original weights are kept, so the next attempt "
                                    "converts again without downloading.", exc.detail) from exc
        files = tuple(InstalledFile(p.name, p.stat().st_size, None, "none")
                      for p in sorted(dst.iterdir()) if p.is_file() and p.name != MANIFEST)
        self._record(dst, entry, "catalog", source.commit or "", files, main_name=".")
        made = sum(f.size for f in files)
        report(progress, "done", entry.label, made, made)
        return dst

    def download_size(self, entry: CatalogEntry) -> int:
        """Bytes getting `entry` would still download now: 0 when it is installed, or, for an MLX level,
        when the original is kept; else the Hub's figure for its files (one metadata request), less
        what a paused download already holds."""
        inv = self.inventory
        folder_id = entry.source_id or entry.id
        if inv.read_manifest(inv.folder(entry.engine, entry.id), entry.engine) is not None or (
                entry.source_id and inv.read_manifest(inv.folder(entry.engine, folder_id), entry.engine)):
            return 0
        from engine.hub import HubSession

        network_log.require_network(entry.label)
        with network_log.purpose("Model download size", entry.label), \
                HubSession(self.endpoint, self.token, stall_timeout=self.stall_timeout) as session:
            snapshot = session.snapshot(entry.repo, entry.revision, [f.name for f in entry.files],
                                        entry.allow_patterns)
        return max(snapshot.total_size - part_bytes(inv.folder(entry.engine, folder_id), snapshot), 0)

    @staticmethod
    def _check_downloaded_gguf(path: Path) -> None:
        from engine.validate import validate_gguf

        try:
            validate_gguf(path)
        except ModelFileError as exc:
            raise DownloadError(
                f"The downloaded file matches the Hub's checksum but is not a model TinyChat can run "
                f"({exc.message}) Update TinyChat or choose another level.", exc.detail) from exc

    def _record(self, folder: Path, entry: CatalogEntry, kind: Kind, commit: str,
                files: tuple[InstalledFile, ...], *, main_name: str) -> None:
        self.inventory.write_manifest(folder, {
            "model": entry.model, "level": entry.level, "engine": entry.engine,
            "label": entry.label if kind != "source" else f"{entry.model} (original weights)", "kind": kind,
            "repo": entry.repo, "commit": commit, "chat_format": entry.chat_format, "context": entry.context,
            "main": main_name,
        }, files)
