"""The model manager the app holds: the inventory of installed models plus the installer that adds more.

`ModelManager` is a `ModelInventory` (engine/model_inventory.py: installed, find, disk_usage, delete,
verify) with the installer's two entry points (engine/model_installer.py: `ensure_available`,
`import_gguf`) on the same object, because the GUI's download worker drives both from one thread.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Unpack

from engine.catalog import Catalog, CatalogEntry
from engine.model_installer import InstallerOptions, ModelInstaller
from engine.model_inventory import MANIFEST, DiskUsage, InstalledFile, InstalledModel, ModelInventory
from engine.progress import ProgressFn

__all__ = ["MANIFEST", "DiskUsage", "InstalledFile", "InstalledModel", "ModelManager"]


class ModelManager(ModelInventory):
    """Installed models under `root` (normally `app.paths.models_dir()`), and getting catalog levels.

    Not thread-safe: one worker thread drives it; `cancel` Events may be set from any thread.
    `options` (endpoint, token, transfer settings, stall timeout, free-space probe) go to the installer.
    """

    def __init__(self, root: Path, catalog: Catalog | None = None, **options: Unpack[InstallerOptions]) -> None:
        super().__init__(root, catalog)
        self.installer = ModelInstaller(self, **options)

    def ensure_available(self, model: str, level: str, progress: ProgressFn | None = None,
                         cancel: threading.Event | None = None) -> Path:
        """The path of `model` at `level`, downloaded and converted first if needed (see ModelInstaller)."""
        return self.installer.ensure_available(model, level, progress, cancel)

    def download_size(self, entry: CatalogEntry) -> int:
        """Bytes getting `entry` would download now (0 when nothing is; see ModelInstaller)."""
        return self.installer.download_size(entry)

    def import_gguf(self, source: Path, progress: ProgressFn | None = None,
                    cancel: threading.Event | None = None, *, in_place: bool = False) -> InstalledModel:
        """Validate a user-picked `.gguf` and add it: copied into the models folder, or recorded where
        it is with `in_place` (see ModelInstaller)."""
        return self.installer.import_gguf(source, progress, cancel, in_place=in_place)
