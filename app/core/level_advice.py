"""Which level to measure against, and which level to use: the advice behind "Measure on this computer".

The reference is the best installed level of the same model and engine: F16, else Q8_0, else the
largest file (MLX: 16-bit, else 8-bit, else the largest). The recommendation is the fastest measured
level (generation tokens/s: what a user waits on) whose answers pick the same next token as the
reference at least `AGREEMENT_THRESHOLD` of the time and that fits in free memory, said in one
sentence with the reason.

Why top-1 agreement for the threshold: it is the one figure a user can picture ("picks the same next
word as F16 94 times in 100"), and it moves with the KL divergence on every level measured here;
KL and perplexity stay in the details.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from engine.level_bench import LevelFigures
from engine.model_inventory import InstalledModel
from engine.progress import human

AGREEMENT_THRESHOLD = 0.90
_REFERENCE_ORDER = ("F16", "16bit", "Q8_0", "8bit")


@dataclass(frozen=True)
class Advice:
    """The level to use (None: no recommendation) and the sentence that says why."""

    level: str | None
    sentence: str


def reference_for(levels: Sequence[InstalledModel]) -> InstalledModel | None:
    """The level the others are measured against: F16 (MLX 16-bit), else Q8_0 (8-bit), else the largest."""
    for name in _REFERENCE_ORDER:
        found = next((m for m in levels if m.level.lower() == name.lower()), None)
        if found is not None:
            return found
    return max(levels, key=lambda m: m.size_bytes, default=None)


def memory_needed(figures: LevelFigures) -> int | None:
    """Bytes the level took while loading and answering (what it adds to the app), if measured."""
    return figures.speed.added_bytes if figures.speed.added_bytes is not None else figures.speed.peak_rss_bytes


def agreement_text(figures: LevelFigures) -> str:
    """The one quality figure users understand, e.g. "94.1 % same next word as F16"."""
    q = figures.quality
    if q is None:
        return "quality not measured"
    return f"{100 * q.top1:.1f} % same next word as {q.reference}"


def _rate(tps: float) -> str:
    return f"{tps:.1f}" if tps < 10 else f"{tps:.0f}"


def recommend(measured: Sequence[LevelFigures], free_bytes: int | None,
              threshold: float = AGREEMENT_THRESHOLD) -> Advice:
    """The fastest measured level within `threshold` top-1 agreement of its reference that fits in
    `free_bytes` (None: unknown, every level fits), with the reason in one sentence."""
    rated = [f for f in measured if f.quality is not None]
    if not rated:
        return Advice(None, "Measure the installed levels on this computer to get a recommendation.")
    reference = rated[0].quality.reference  # type: ignore[union-attr]
    fits = [f for f in rated if free_bytes is None or (memory_needed(f) or 0) <= free_bytes]
    room = f" and fits in the {human(free_bytes)} of free memory" if free_bytes is not None else ""
    if not fits:
        least = min(rated, key=lambda f: memory_needed(f) or 0)
        return Advice(None, f"None of the measured levels fits in the {human(free_bytes or 0)} of free memory; "
                            f"{least.level} needs the least ({human(memory_needed(least) or 0)}). Close other "
                            "programs and measure again.")
    good = [f for f in fits if f.quality.top1 >= threshold]  # type: ignore[union-attr]
    if good:
        best = max(good, key=lambda f: f.speed.gen_tps)
        return Advice(best.level, f"Use {best.level}: it is the fastest level measured here "
                                  f"({_rate(best.speed.gen_tps)} tokens/s) that picks the same next word as "
                                  f"{reference} at least {100 * threshold:.0f} % of the time "
                                  f"({100 * best.quality.top1:.1f} %){room}.")  # type: ignore[union-attr]
    best = max(fits, key=lambda f: f.quality.top1)  # type: ignore[union-attr]
    return Advice(best.level, f"Use {best.level}: no level that fits picks the same next word as {reference} "
                              f"{100 * threshold:.0f} % of the time; it comes closest "
                              f"({100 * best.quality.top1:.1f} %){room}.")  # type: ignore[union-attr]
