"""Local conversion of a downloaded Hugging Face snapshot into an MLX model folder.

The steps are mlx_lm.convert's own (load lazily, cast, quantize, save), run one at a time so the
caller gets progress and can cancel between them — and between layers while the weights are
computed, which is where the time goes. The result is built in a temp folder next to the
destination and moved into place with `os.replace`, so a cancelled or failed conversion never
leaves a half-written model behind. The source snapshot is never modified.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import logging
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from engine.types import EngineError, ModelFileError

log = logging.getLogger(__name__)

Progress = Callable[[float, str], None]  # (fraction done 0..1, what is happening) → None

GROUP_SIZE = 64  # mlx-lm's default quantization group
BITS = (4, 8, 16, None)  # 16 or None: unquantized (the catalog's "16-bit" level)


class ConversionCancelled(EngineError):
    """The user cancelled the conversion; nothing was written."""

    def __init__(self) -> None:
        super().__init__("The conversion was cancelled. Nothing was changed.")


def compute_dtype() -> str:
    """Weight dtype for MLX models on this machine: float16 on Apple Silicon; float32 elsewhere,
    where the CPU backend runs half precision 10–50× slower."""
    return "float16" if sys.platform == "darwin" else "float32"


def check_snapshot(src_dir: Path) -> dict:
    """Raise ModelFileError unless `src_dir` holds a convertible HF llama snapshot; return its config."""
    config_path = src_dir / "config.json"
    if not src_dir.is_dir() or not config_path.is_file():
        raise ModelFileError("The downloaded model is incomplete (config.json is missing). Download it again.",
                             detail=str(src_dir))
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelFileError("The downloaded model's config.json is damaged. Download the model again.",
                             detail=repr(e)) from e
    if not any(src_dir.glob("model*.safetensors")):
        raise ModelFileError("The downloaded model has no weights (model.safetensors). Download it again.",
                             detail=str(src_dir))
    if not (src_dir / "tokenizer.json").is_file() and not (src_dir / "tokenizer.model").is_file():
        raise ModelFileError("The downloaded model has no tokenizer. Download it again.", detail=str(src_dir))
    return config


def convert(src_dir: Path, dst_dir: Path, bits: int | None = 4, progress: Progress | None = None,
            cancel: threading.Event | None = None, *, dtype: str | None = None) -> Path:
    """Convert the HF snapshot in `src_dir` into an MLX model at `dst_dir` (4- or 8-bit quantized, or
    unquantized for `bits` 16 or None) and return `dst_dir`. An existing `dst_dir` is replaced only once
    the new model is complete. Raises ConversionCancelled, ModelFileError or EngineError."""
    if bits not in BITS:
        raise ValueError(f"bits must be one of {BITS}")
    bits = None if bits == 16 else bits
    src_dir, dst_dir = Path(src_dir), Path(dst_dir)
    report = progress or (lambda _f, _s: None)
    config = check_snapshot(src_dir)
    # mlx-lm's llama defaults to tied embeddings and would silently drop a separate lm_head.weight.
    overrides = {"tie_word_embeddings": False} if "tie_word_embeddings" not in config and _has_lm_head(src_dir) else {}
    t0 = time.perf_counter()

    def step(fraction: float, stage: str) -> None:
        if cancel is not None and cancel.is_set():
            raise ConversionCancelled()
        report(fraction, stage)

    dst_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dst_dir.parent, prefix=f".{dst_dir.name}.converting-"))
    try:
        step(0.0, "Loading the downloaded model")
        out = tmp / "model"
        _convert_into(out, src_dir, bits, dtype or compute_dtype(), overrides, step)
        step(0.99, "Putting the model in place")
        _place(out, dst_dir, tmp)
        report(1.0, "Done")
    except RuntimeError as e:  # mlx failing mid-way: a weight it cannot read or compute
        raise EngineError("The model could not be converted. Delete the downloaded original and download it "
                          "again; if that does not help, choose a llama.cpp model instead.", detail=repr(e)) from e
    except OSError as e:
        if e.errno == errno.ENOSPC:
            raise EngineError("There is not enough disk space to convert the model. Free some space and try "
                              "again.", detail=repr(e)) from e
        raise EngineError("The model could not be converted because a file could not be written. Check that "
                          "the models folder is writable and try again.", detail=repr(e)) from e
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log.info("converted %s → %s (%s bits, %s) in %.1f s", src_dir, dst_dir, bits or 16, dtype or compute_dtype(),
             time.perf_counter() - t0)
    return dst_dir


def _convert_into(out: Path, src_dir: Path, bits: int | None, dtype: str, overrides: dict,
                  step: Callable[[float, str], None]) -> None:
    """mlx_lm.convert's steps, with `step` called between them (and per layer) for progress and cancel."""
    import mlx.core as mx
    from mlx.utils import tree_map_with_path
    from mlx_lm.utils import load, quantize_model, save

    chatter = io.StringIO()  # mlx-lm prints [INFO] lines; they belong in the log
    try:
        with contextlib.redirect_stdout(chatter):
            model, tokenizer, config = load(str(src_dir), lazy=True, return_config=True,
                                           model_config=overrides)
    except (ValueError, KeyError, FileNotFoundError, json.JSONDecodeError, RuntimeError) as e:
        raise ModelFileError("The downloaded model could not be read: it may be damaged or not a Llama model. "
                             "Delete it and download it again.", detail=repr(e)) from e
    step(0.05, "Preparing the weights")
    target = getattr(mx, dtype)
    cast = getattr(model, "cast_predicate", lambda _k: True)
    model.update(tree_map_with_path(
        lambda k, v: v.astype(target) if cast(k) and mx.issubdtype(v.dtype, mx.floating) else v,
        model.parameters()))
    config["torch_dtype"] = dtype
    if bits is not None:
        with contextlib.redirect_stdout(chatter):
            model, config = quantize_model(model, config, GROUP_SIZE, bits)
    # Computing the (lazy) weights is the slow part: do it a layer at a time so cancel stays prompt.
    layers = list(model.layers)
    for i, layer in enumerate(layers):
        step(0.05 + 0.85 * i / len(layers), f"Converting layer {i + 1} of {len(layers)}")
        mx.eval(layer.parameters())
    mx.eval(model.parameters())
    step(0.92, "Saving")
    with contextlib.redirect_stdout(chatter):
        save(out, src_dir, model, tokenizer, config)
    if chatter.getvalue():
        log.debug("mlx-lm: %s", chatter.getvalue().strip())


def _has_lm_head(src_dir: Path) -> bool:
    """True when the snapshot's safetensors hold `lm_head.weight` (read from the headers only)."""
    for f in src_dir.glob("model*.safetensors"):
        try:
            with f.open("rb") as fh:
                size = int.from_bytes(fh.read(8), "little")
                if "lm_head.weight" in json.loads(fh.read(min(size, 100_000_000))):
                    return True
        except (OSError, ValueError):
            continue  # unreadable: mlx-lm's load will say so
    return False


def _place(out: Path, dst_dir: Path, tmp: Path) -> None:
    """Move the finished model to `dst_dir`; an older model there is moved aside first and deleted
    with the temp folder."""
    previous = tmp / "previous"
    if dst_dir.exists():
        os.replace(dst_dir, previous)
    try:
        os.replace(out, dst_dir)
    except OSError:
        if previous.exists():
            os.replace(previous, dst_dir)
        raise
