"""Measuring installed levels end to end (app/core/level_measure.py): the reference chosen among them,
figures kept per conditions in the data folder, the recommendation, progress and cancel."""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path

import pytest

from app.core.level_advice import AGREEMENT_THRESHOLD, agreement_text, recommend, reference_for
from app.core.level_measure import measure_installed, measured
from app.core.level_results import LevelResults, model_identity
from engine.catalog import Catalog
from engine.level_logits import MeasurementCancelled
from engine.level_quality import Windows
from engine.models import ModelManager
from tests.fakehub import FakeHub, gguf_entry, write_catalog
from tests.fixtures.gguf_model import build_cached

REPO = "test/Small-GGUF"
WINDOWS = Windows(chunks=2, length=128, first=32)  # a few hundred tokens: enough to order these levels
LEVELS = ("Q2_K", "Q8_0", "F16")


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[ModelManager, dict]:
    """The small shape at three levels, downloaded from the fake Hub as catalog levels of one model."""
    root = tmp_path_factory.mktemp("models")
    files = {f"small.{level.lower()}.gguf": build_cached("small", level) for level in LEVELS}
    with FakeHub() as hub:
        commit = hub.add_repo(REPO, files)
        entries = [gguf_entry(REPO, commit, f"small.{level.lower()}.gguf", model="small", level=level)
                   for level in LEVELS]
        catalog = Catalog.load(write_catalog(root / "catalog.json", entries))
        mm = ModelManager(root / "models", catalog, endpoint=hub.endpoint)
        levels = {level: mm.find("small", level) or (mm.ensure_available("small", level) and mm.find("small", level))
                  for level in LEVELS}
    return mm, levels


@pytest.fixture(scope="module")
def run(installed, tmp_path_factory):
    mm, levels = installed
    store = LevelResults(tmp_path_factory.mktemp("data") / "level-measurements.json")
    seen: list[tuple[str, str, float]] = []
    figures = measure_installed(mm, [levels["Q2_K"], levels["Q8_0"], levels["F16"]], store, threads=2,
                                cache_dir=tmp_path_factory.mktemp("cache"), windows=WINDOWS,
                                progress=lambda *p: seen.append(p))
    return store, {f.level: f for f in figures}, seen


def test_the_reference_is_f16_then_q8_0_then_the_largest_file(installed):
    _, levels = installed
    assert reference_for(list(levels.values())).level == "F16"
    assert reference_for([levels["Q2_K"], levels["Q8_0"]]).level == "Q8_0"
    assert reference_for([levels["Q2_K"]]).level == "Q2_K"
    assert reference_for([]) is None


def test_every_level_gets_speed_memory_and_quality_against_the_reference(run):
    _, figures, _ = run
    assert set(figures) == set(LEVELS)
    for f in figures.values():
        assert f.speed.gen_tps > 0 and f.speed.prompt_tps > 0 and f.speed.ttft_s > 0 and f.speed.load_s > 0
        assert f.speed.gen_tps_range[0] <= f.speed.gen_tps <= f.speed.gen_tps_range[1]
        assert f.speed.peak_rss_bytes > 0 and f.took_s > 0 and f.cpu_s > 0
        assert f.quality.reference.endswith("F16") and f.quality.tokens == WINDOWS.scored
    assert figures["F16"].quality.kl_mean == 0 and figures["F16"].quality.top1 == 1
    assert figures["Q8_0"].quality.top1 > figures["Q2_K"].quality.top1
    assert figures["Q8_0"].quality.kl_mean < figures["Q2_K"].quality.kl_mean
    assert agreement_text(figures["Q8_0"]).endswith("% same next word as F16")


def test_progress_rises_to_one_naming_each_level(run):
    _, _, seen = run
    fractions = [f for _, _, f in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert {"reference", "speed", "quality", "done"} <= {stage for _, stage, _ in seen}


def test_figures_are_kept_per_file_and_conditions_and_read_back(run, installed):
    store, figures, _ = run
    _, levels = installed
    back = measured(store, list(levels.values()), threads=2)
    assert {levels[k].id for k in LEVELS} == set(back)
    assert back[levels["Q8_0"].id] == figures["Q8_0"]
    assert measured(store, list(levels.values()), threads=3) == {}  # another thread count: not measured
    assert model_identity(levels["Q8_0"]).startswith("sha256:")


def test_the_recommendation_is_the_fastest_level_close_enough_that_fits(run):
    _, figures, _ = run
    all_levels = list(figures.values())
    advice = recommend(all_levels, free_bytes=None)
    close = [f for f in all_levels if f.quality.top1 >= AGREEMENT_THRESHOLD]
    assert advice.level == max(close, key=lambda f: f.speed.gen_tps).level
    assert advice.sentence.startswith(f"Use {advice.level}: it is the fastest level measured here")
    # Too little memory for any of them: no level, and the sentence says which needs least.
    tight = recommend(all_levels, free_bytes=1)
    assert tight.level is None and "None of the measured levels fits" in tight.sentence
    # A threshold no quantized level reaches: the closest one that fits, and the sentence admits it.
    strict = recommend([figures["Q2_K"], figures["Q8_0"]], free_bytes=None, threshold=1.01)
    assert strict.level == "Q8_0" and "comes closest" in strict.sentence
    assert recommend([replace(figures["Q2_K"], quality=None)], None).level is None


def test_a_cancelled_measurement_keeps_nothing(installed, tmp_path):
    mm, levels = installed
    store = LevelResults(tmp_path / "level-measurements.json")
    cancel = threading.Event()

    def cancel_once_measuring(label: str, stage: str, fraction: float) -> None:
        if stage == "speed":
            cancel.set()

    with pytest.raises(MeasurementCancelled):
        measure_installed(mm, [levels["Q2_K"]], store, threads=2, cache_dir=tmp_path, windows=WINDOWS,
                          cancel=cancel, progress=cancel_once_measuring)
    assert measured(store, [levels["Q2_K"]], threads=2) == {}


def test_a_damaged_figures_file_is_set_aside_and_measuring_starts_afresh(tmp_path, run):
    _, figures, _ = run
    path = tmp_path / "level-measurements.json"
    path.write_text("{ half a file")
    store = LevelResults(path)
    assert store.get("sha256:x", "b", "c", 2) is None
    assert Path(str(path) + ".damaged").is_file()
    store.put("sha256:x", figures["Q2_K"])
    f = figures["Q2_K"]
    assert store.get("sha256:x", f.engine_build, f.cpu, f.threads) == f
    assert store.forget("sha256:x") == 1 and store.get("sha256:x", f.engine_build, f.cpu, f.threads) is None
