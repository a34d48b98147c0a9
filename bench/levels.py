"""Quantization levels measured as the app measures them (engine/level_bench.py), on random-weight models
with TinyLlama-1.1B's exact shape: Q2_K, Q4_K_M, Q8_0 and F16 built from the same weights (cached).

    python -m bench.levels [--levels Q2_K Q4_K_M Q8_0 F16] [--reference F16] [--threads 2]
    python -m bench.levels --engine mlx          # MLX 4/8/16-bit on the reduced `bench` shape

Prints a Markdown section for docs/benchmarks.md: every figure with its spread, the time each
measurement took (wall and CPU) and the machine's load average around it, because other jobs on a
shared machine slow everything down.

Building the F16 model (2.2 GB of random weights) and quantizing it takes minutes of CPU the first time.
Random weights make near-uniform next-token distributions: the quality figures order the levels but say
nothing about TinyLlama's real answers (see docs/models.md, "Reading the figures").
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

from engine.hardware import cpu_name, physical_cores
from engine.level_bench import (
    LevelFigures,
    engine_build,
    file_identity,
    measure_level,
    prepare_reference,
    read_eval_text,
)
from engine.progress import human
from engine.types import ModelInfo
from tests.fixtures.gguf_model import CACHE_DIR, build_cached, quantize

LEVELS = ("Q2_K", "Q4_K_M", "Q8_0", "F16")


def gguf_level(level: str) -> Path:
    """The TinyLlama-shaped model at `level`, quantized from the one cached F16 (same weights for all)."""
    f16 = build_cached("tinyllama", "F16")
    path = CACHE_DIR / f"tinyllama-random-{level.lower()}.gguf"
    if level == "F16" or path.exists():
        return f16 if level == "F16" else path
    with tempfile.TemporaryDirectory(dir=CACHE_DIR) as tmp:
        out = quantize(f16, Path(tmp) / "out.gguf", level)
        os.replace(out, path)
    return path


def mlx_level(bits: int) -> Path:
    from tests.fixtures.hf_model import build_mlx_cached

    return build_mlx_cached("bench", None if bits == 16 else bits)


def row(f: LevelFigures, size: int, load: tuple[float, float]) -> str:
    s, q = f.speed, f.quality
    quality = "—"
    if q is not None:
        quality = (f"{100 * q.top1:.1f} ± {100 * q.top1_se:.1f} % | {q.kl_mean:.4f} ± {q.kl_se:.4f} "
                   f"(p99 {q.kl_p99:.3f}) | {q.ppl:.0f} ± {q.ppl_se:.0f}")
    mem = f"+{human(s.added_bytes)}" if s.added_bytes is not None else "?"
    return (f"| {f.level} | {human(size)} | {s.load_s:.2f} | {s.prompt_tps:.1f} ({s.prompt_tps_range[0]:.1f}–"
            f"{s.prompt_tps_range[1]:.1f}) | {s.gen_tps:.2f} ({s.gen_tps_range[0]:.2f}–{s.gen_tps_range[1]:.2f}) | "
            f"{s.ttft_s:.2f} | {mem} | {quality} | {f.took_s:.0f} s / {f.cpu_s:.0f} s | "
            f"{load[0]:.1f} → {load[1]:.1f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--levels", nargs="*", default=list(LEVELS))
    ap.add_argument("--reference", default="F16",
                    help="the level the others are compared with (llama.cpp; measured once and cached)")
    ap.add_argument("--engine", choices=("llama.cpp", "mlx"), default="llama.cpp")
    ap.add_argument("--threads", type=int, default=physical_cores())
    args = ap.parse_args()
    text = read_eval_text()
    if args.engine == "mlx":
        levels = files = {f"{b}bit": mlx_level(b) for b in (4, 8, 16)}
        ref_level = "16bit"
    else:
        t0 = time.perf_counter()
        # The reference is built even when it is not measured itself: `--levels Q4_K_M` alone is
        # still compared with F16, not with itself.
        ref_level = args.reference
        files = {level: gguf_level(level) for level in {*args.levels, ref_level}}
        levels = {level: files[level] for level in args.levels}
        print(f"<!-- models ready in {time.perf_counter() - t0:.0f} s -->")

    def info(level: str) -> ModelInfo:
        return ModelInfo(path=files[level], engine=args.engine, quant=level, label=level)  # type: ignore[arg-type]

    say(f"Machine: {platform.machine()}, {cpu_name()}, {physical_cores()} physical cores; "
        f"{engine_build(args.engine)}; {args.threads} threads. Evaluation text: `assets/level_eval.txt`.\n")
    load0 = os.getloadavg()[0]
    t0, c0 = time.perf_counter(), time.process_time()
    # Kept next to the models (checked against file, text and windows), so a run of a few levels reuses it.
    reference = prepare_reference(info(ref_level), text, identity=file_identity(files[ref_level]),
                                  n_threads=args.threads, cache=CACHE_DIR / f"levels-reference-{args.engine}.npz")
    say(f"Reference ({ref_level}) distributions measured once: {time.perf_counter() - t0:.0f} s wall, "
        f"{time.process_time() - c0:.0f} s CPU (load average {load0:.1f} → {os.getloadavg()[0]:.1f}); "
        f"{reference.windows.chunks} windows of {reference.windows.length} tokens, {reference.windows.scored} "
        "positions scored.\n")
    say("| level | file | load s | prompt tok/s (range) | generation tok/s (range) | first token s | memory | "
        "same top token | KL divergence | perplexity | took (wall / CPU) | load average |")
    say("|---|---|---|---|---|---|---|---|---|---|---|---|")
    measured = []
    for level in levels:  # each row as soon as it is measured: a stopped run keeps what it has
        load0 = os.getloadavg()[0]
        f = measure_level(info(level), identity=file_identity(levels[level]), text=text, reference=reference,
                          n_threads=args.threads)
        size = sum(p.stat().st_size for p in levels[level].rglob("*")) if levels[level].is_dir() \
            else levels[level].stat().st_size
        say(row(f, size, (load0, os.getloadavg()[0])))
        measured.append(f)
    s0 = measured[0].speed
    say(f"\nTypical turn: {s0.prompt_tokens} prompt tokens, {s0.gen_tokens} generated, 2 turns.\n")
    say("Per window (KL; same top token):")
    for f in measured:
        if f.quality is not None:
            q = f.quality
            say(f"- {f.level}: " + ", ".join(f"{k:.4f}; {100 * t:.1f} %" for k, t in zip(q.chunk_kl, q.chunk_top1,
                                                                                       strict=True)))


def say(line: str) -> None:
    print(line, flush=True)

if __name__ == "__main__":
    main()
