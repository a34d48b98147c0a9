"""What the user is told about a level on this computer: whether it is recommended here and its note.

MLX's levels are recommended for Apple Silicon, where MLX uses the GPU. Anywhere else MLX runs on the
CPU only, slower than llama.cpp, and the same level is neither starred nor called recommended.
"""

from __future__ import annotations

from engine.catalog import CatalogEntry
from engine.select import mlx_runs_on_cpu

MLX_ON_CPU = "On this computer MLX runs on the CPU only: slower than llama.cpp."


def recommended(entry: CatalogEntry) -> bool:
    """True for the catalog's recommended level, unless it is an MLX level on a computer without its GPU."""
    return entry.default and not (entry.engine == "mlx" and mlx_runs_on_cpu())


def level_note(entry: CatalogEntry) -> str:
    """The level's one-line note, saying where it is recommended and what to expect here."""
    if entry.engine != "mlx":
        return entry.note
    if mlx_runs_on_cpu():
        return f"{entry.note} {MLX_ON_CPU}"
    return f"Recommended on Apple Silicon. {entry.note}" if entry.default else entry.note
