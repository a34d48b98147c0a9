"""Converting a downloaded HF snapshot to MLX (engine/mlx_convert.py), on generated models."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import pytest

from engine.mlx_backend import MlxEngine
from engine.mlx_convert import ConversionCancelled, compute_dtype, convert
from engine.types import GenerationParams, LoadOptions, Message, ModelFileError, ModelInfo
from tests.fixtures.hf_model import build_hf_cached
from tests.fixtures.vocab import SCRIPT_TEXT

GREEDY = GenerationParams(temperature=0.0, max_tokens=32)


def answer(model_dir: Path) -> str:
    engine = MlxEngine()
    engine.load(ModelInfo(path=model_dir, engine="mlx"), LoadOptions())
    try:
        return "".join(c.text for c in engine.generate([Message("user", "Hi")], GREEDY, threading.Event()))
    finally:
        engine.unload()


def snapshot_state(folder: Path) -> dict[str, tuple[int, float]]:
    return {p.name: (p.stat().st_size, p.stat().st_mtime) for p in folder.iterdir()}


@pytest.fixture(scope="module")
def scripted_src() -> Path:
    return build_hf_cached("tiny", scripted=True)


@pytest.mark.parametrize("bits", [4, 8, 16])
def test_every_bit_width_converts_to_a_model_that_answers(scripted_src, tmp_path, bits):
    dst = convert(scripted_src, tmp_path / f"m{bits}", bits)
    config = json.loads((dst / "config.json").read_text())
    if bits == 16:
        assert "quantization" not in config
    else:
        assert config["quantization"]["bits"] == bits
    assert answer(dst) == SCRIPT_TEXT


def test_fewer_bits_give_a_smaller_model(scripted_src, tmp_path):
    sizes = {b: (convert(scripted_src, tmp_path / f"m{b}", b) / "model.safetensors").stat().st_size
             for b in (4, 8, 16)}
    assert sizes[4] < sizes[8] < sizes[16]


def test_unquantized_weights_use_this_machines_compute_dtype(scripted_src, tmp_path):
    import mlx.core as mx

    dst = convert(scripted_src, tmp_path / "m", None)
    weights = mx.load(str(dst / "model.safetensors"))
    assert {str(w.dtype) for w in weights.values()} == {f"mlx.core.{compute_dtype()}"}


def test_the_source_snapshot_is_left_untouched(scripted_src, tmp_path):
    before = snapshot_state(scripted_src)
    convert(scripted_src, tmp_path / "m", 4)
    assert snapshot_state(scripted_src) == before


def test_progress_rises_from_zero_to_one_naming_each_stage(scripted_src, tmp_path):
    seen: list[tuple[float, str]] = []
    convert(scripted_src, tmp_path / "m", 4, progress=lambda f, s: seen.append((f, s)))
    fractions = [f for f, _ in seen]
    assert fractions[0] == 0.0 and fractions[-1] == 1.0
    assert fractions == sorted(fractions)
    assert any("layer" in s for _, s in seen)


def test_cancelled_conversion_leaves_nothing_behind(scripted_src, tmp_path):
    cancel = threading.Event()

    def cancel_at_first_layer(_fraction: float, stage: str) -> None:
        if "layer" in stage:
            cancel.set()

    with pytest.raises(ConversionCancelled) as e:
        convert(scripted_src, tmp_path / "m", 4, progress=cancel_at_first_layer, cancel=cancel)
    assert "cancelled" in e.value.message
    assert list(tmp_path.iterdir()) == []  # no model, no temp folder


def test_a_cancelled_reconversion_keeps_the_existing_model(scripted_src, tmp_path):
    dst = convert(scripted_src, tmp_path / "m", 8)
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(ConversionCancelled):
        convert(scripted_src, dst, 4, cancel=cancel)
    assert json.loads((dst / "config.json").read_text())["quantization"]["bits"] == 8
    assert answer(dst) == SCRIPT_TEXT
    convert(scripted_src, dst, 4)
    assert json.loads((dst / "config.json").read_text())["quantization"]["bits"] == 4
    assert [p.name for p in tmp_path.iterdir()] == ["m"]


def test_a_config_without_tie_word_embeddings_keeps_the_separate_output_layer(scripted_src, tmp_path):
    # mlx-lm would otherwise tie lm_head to the embeddings and the scripted answer would be lost.
    src = tmp_path / "src"
    shutil.copytree(scripted_src, src)
    config = json.loads((src / "config.json").read_text())
    del config["tie_word_embeddings"]
    (src / "config.json").write_text(json.dumps(config))
    assert answer(convert(src, tmp_path / "m", None)) == SCRIPT_TEXT


def test_a_snapshot_without_weights_is_a_plain_model_file_error(scripted_src, tmp_path):
    src = tmp_path / "src"
    shutil.copytree(scripted_src, src)
    (src / "model.safetensors").unlink()
    with pytest.raises(ModelFileError) as e:
        convert(src, tmp_path / "m", 4)
    assert "Download it again" in e.value.message
    assert not (tmp_path / "m").exists()


def test_damaged_weights_are_a_plain_model_file_error_and_nothing_is_written(scripted_src, tmp_path):
    src = tmp_path / "src"
    shutil.copytree(scripted_src, src)
    weights = src / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 3])
    with pytest.raises(ModelFileError) as e:
        convert(src, tmp_path / "out" / "m", 4)
    assert e.value.message.endswith(".")
    assert list((tmp_path / "out").iterdir()) == []
