"""Measuring installed levels and reading back what was measured: the one path behind the window's
"Measure on this computer" and `tinychat models bench`.

`measure_installed` picks the reference among the installed levels of the same model and engine
(app/core/level_advice.py), reads its distributions from the cache folder or measures them once,
measures each requested level (engine/level_bench.py) and keeps the figures (app/core/level_results.py).
It blocks: the GUI runs it on a background thread, where `cancel` and `progress` come from.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from app.core import paths
from app.core.level_advice import reference_for
from app.core.level_results import RESULTS_FILE, LevelResults, model_identity
from app.core.settings import Settings
from engine.hardware import cpu_name, physical_cores
from engine.level_bench import LevelFigures, engine_build, measure_level, prepare_reference, read_eval_text
from engine.level_quality import DEFAULT_WINDOWS, Windows
from engine.model_inventory import InstalledModel, ModelInventory
from engine.select import choose_engine

Progress = Callable[[str, str, float], None]  # (level label, stage, fraction of the whole job)


def results_store() -> LevelResults:
    """The figures file in the data folder."""
    return LevelResults(paths.data_dir() / RESULTS_FILE)


def threads_for(settings: Settings) -> int:
    """The thread count the chat engine uses with these settings (figures are kept per count)."""
    return settings.n_threads or physical_cores()


def levels_in_use(inventory: ModelInventory, settings: Settings) -> list[InstalledModel]:
    """The installed levels of the settings' model for the engine that runs here."""
    engine = choose_engine(settings.engine).name
    return [m for m in inventory.installed() if m.engine == engine and m.model == settings.model_id]


def siblings(inventory: ModelInventory, model: InstalledModel) -> list[InstalledModel]:
    """Every installed level of the same model and engine as `model` (itself included)."""
    return [m for m in inventory.installed() if m.engine == model.engine and m.model == model.model]


def measured(results: LevelResults, levels: Sequence[InstalledModel], threads: int) -> dict[str, LevelFigures]:
    """Figures kept for `levels` (by installed id) under this computer's current conditions."""
    cpu, found = cpu_name(), {}
    for m in levels:
        figures = results.get(model_identity(m), engine_build(m.engine), cpu, threads)
        if figures is not None:
            found[m.id] = figures
    return found


def measure_installed(inventory: ModelInventory, targets: Sequence[InstalledModel], results: LevelResults, *,
                      threads: int, cache_dir: Path | None = None, text: str | None = None,
                      cancel: threading.Event | None = None, progress: Progress | None = None,
                      windows: Windows = DEFAULT_WINDOWS) -> list[LevelFigures]:
    """Measure each of `targets` against the reference of its model, keep and return the figures.
    Raises MeasurementCancelled (nothing more is kept) or EngineError with a sentence."""
    text = text if text is not None else read_eval_text()
    cache_dir = cache_dir or paths.cache_dir() / "level-reference"
    units = len(targets) + 1  # measuring the reference (when not cached yet) counts as one level

    def report(label: str, stage: str, unit: float) -> None:
        if progress is not None:
            progress(label, stage, min(unit / units, 1.0))

    out = []
    for n, target in enumerate(targets):
        ref_model = reference_for(siblings(inventory, target)) or target
        ref_id = model_identity(ref_model)
        reference = prepare_reference(
            replace(ref_model.model_info(), label=ref_model.level), text, identity=ref_id, n_threads=threads,
            cancel=cancel, windows=windows,
            cache=cache_dir / (hashlib.sha256(ref_id.encode()).hexdigest()[:24] + ".npz"),
            step=lambda f, label=ref_model.label, n=n: report(label, "reference", n + f if n == 0 else n + 1))
        figures = measure_level(
            target.model_info(), identity=model_identity(target), text=text, reference=reference, n_threads=threads,
            cancel=cancel, progress=lambda stage, f, label=target.label, n=n: report(label, stage, n + 1 + f))
        results.put(model_identity(target), figures)
        out.append(figures)
    return out
