"""Answer quality of a level against a reference (engine/level_quality.py), validated on levels built
from the same weights: the figure is measured, not assumed."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from engine.level_bench import read_eval_text
from engine.level_logits import MeasurementCancelled, open_logits
from engine.level_quality import Quality, Reference, Windows, build_reference, compare
from engine.types import EngineError
from tests.cancel_after import CancelAfter
from tests.fixtures.gguf_model import build_cached

# Two short windows keep each run to a few hundred tokens on the small shape; the gaps between the
# levels' figures are far wider than this sample's uncertainty.
WINDOWS = Windows(chunks=2, length=128, first=32)


@pytest.fixture(scope="module")
def text() -> str:
    return read_eval_text()


def reference_of(path, text: str, engine: str = "llama.cpp") -> Reference:
    source = open_logits(path, engine, WINDOWS.length, 2)
    try:
        return build_reference(source, text, label=path.name, identity=str(path), windows=WINDOWS)
    finally:
        source.close()


def measured(path, reference: Reference, text: str, engine: str = "llama.cpp") -> Quality:
    source = open_logits(path, engine, WINDOWS.length, 2)
    try:
        return compare(source, reference, text)
    finally:
        source.close()


@pytest.fixture(scope="module")
def f16_reference(text) -> Reference:
    return reference_of(build_cached("small", "F16"), text)


def test_a_file_measured_against_itself_gives_zero_divergence_and_full_agreement(f16_reference, text):
    q = measured(build_cached("small", "F16"), f16_reference, text)
    assert q.kl_mean == 0.0 and q.kl_max == 0.0
    assert q.top1 == 1.0
    assert q.ppl == pytest.approx(q.reference_ppl, rel=1e-6)
    assert q.tokens == WINDOWS.scored == 2 * (128 - 1 - 32)


def test_more_bits_from_the_same_weights_measure_closer_to_the_reference(f16_reference, text):
    q = {level: measured(build_cached("small", level), f16_reference, text) for level in ("Q8_0", "Q4_K_M", "Q2_K")}
    assert 0 < q["Q8_0"].kl_mean < q["Q4_K_M"].kl_mean < q["Q2_K"].kl_mean
    # The order is far outside the measurement's own uncertainty, not a coin toss.
    assert q["Q8_0"].kl_mean + 3 * q["Q8_0"].kl_se < q["Q4_K_M"].kl_mean - 3 * q["Q4_K_M"].kl_se
    assert q["Q4_K_M"].kl_mean + 3 * q["Q4_K_M"].kl_se < q["Q2_K"].kl_mean - 3 * q["Q2_K"].kl_se
    assert q["Q8_0"].top1 > q["Q4_K_M"].top1 > q["Q2_K"].top1
    assert len(q["Q2_K"].chunk_kl) == 2 and min(q["Q2_K"].chunk_kl) > max(q["Q8_0"].chunk_kl)


def test_a_saved_reference_gives_the_same_figures_as_the_one_in_memory(f16_reference, text, tmp_path):
    f16_reference.save(tmp_path / "ref.npz")
    loaded = Reference.load(tmp_path / "ref.npz")
    assert loaded.label == f16_reference.label and np.array_equal(loaded.chunks, f16_reference.chunks)
    q4 = build_cached("small", "Q4_K_M")
    assert measured(q4, loaded, text) == measured(q4, f16_reference, text)


def test_a_damaged_saved_reference_is_a_sentence_not_a_crash(tmp_path):
    (tmp_path / "ref.npz").write_bytes(b"not numpy")
    with pytest.raises(EngineError, match="could not be read"):
        Reference.load(tmp_path / "ref.npz")


def test_another_model_is_refused_because_its_vocabulary_differs(f16_reference, text):
    other = build_cached("tiny", "F32", scripted=True, chatml=False)  # no ChatML tokens: 3 fewer
    with pytest.raises(EngineError, match="not the same model"):
        measured(other, f16_reference, text)


def test_a_reference_measured_on_another_text_is_refused(f16_reference, text):
    with pytest.raises(EngineError, match="another evaluation text"):
        measured(build_cached("small", "Q8_0"), f16_reference, text + " ")


def test_cancel_stops_the_measurement(f16_reference, text):
    cancel = threading.Event()
    cancel.set()
    source = open_logits(build_cached("small", "Q4_K_M"), "llama.cpp", 128, 2)
    try:
        with pytest.raises(MeasurementCancelled):
            compare(source, f16_reference, text, cancel=cancel)
    finally:
        source.close()


def test_cancel_stops_a_window_while_it_is_evaluated_and_the_source_stays_usable(text):
    source = open_logits(build_cached("small", "Q4_K_M"), "llama.cpp", WINDOWS.length, 2)
    try:
        tokens = [source.bos, *source.tokenize(text)[:WINDOWS.length - 1]]
        whole = source.logits(tokens, None)
        with pytest.raises(MeasurementCancelled):
            source.logits(tokens, CancelAfter(4))  # by the 4th check llama.cpp is inside the window's decode
        assert np.array_equal(source.logits(tokens, None), whole)
    finally:
        source.close()


def test_mlx_levels_measure_in_the_order_of_their_bits(text):
    from tests.fixtures.hf_model import build_mlx_cached

    ref = reference_of(build_mlx_cached("tiny", None), text, "mlx")
    same = measured(build_mlx_cached("tiny", None), ref, text, "mlx")
    assert same.kl_mean == 0.0 and same.top1 == 1.0
    q8 = measured(build_mlx_cached("tiny", 8), ref, text, "mlx")
    q4 = measured(build_mlx_cached("tiny", 4), ref, text, "mlx")
    assert 0 < q8.kl_mean < q4.kl_mean
    assert q8.kl_mean + 3 * q8.kl_se < q4.kl_mean - 3 * q4.kl_se


def test_the_evaluation_text_ships_in_assets_with_every_kind_of_text(text, monkeypatch, tmp_path):
    from engine.level_bench import eval_text_path

    assert eval_text_path() == Path(__file__).resolve().parents[1] / "assets" / "level_eval.txt"
    assert text.count("<|im_start|>assistant\n") >= 5 and text.count("```") >= 10  # chat turns, code
    assert sum(c.isdigit() for c in text) > 200 and any(ord(c) > 0x3000 for c in text)  # numbers, CJK
    monkeypatch.setattr("sys._MEIPASS", str(tmp_path), raising=False)  # a frozen build's data folder
    assert eval_text_path() == tmp_path / "assets" / "level_eval.txt"
