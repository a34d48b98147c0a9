"""How close generation comes to this machine's memory limit.

Generating one token reads every weight once (the token embedding table excepted: one row of it) and
the KV cache of the context so far, so memory bandwidth ÷ bytes read per token is a ceiling on tokens/s.
This measures the bandwidth with a large NumPy array copy and, for each quantization level of the
TinyLlama-shaped model in the models cache, reports generation speed as a fraction of that ceiling.

    python -m bench.bandwidth [--tokens 96] [--rounds 3] [--levels q4_k_m,q8_0] [--threads N]

Prints a Markdown section for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from pathlib import Path

import numpy as np

from engine.hardware import physical_cores
from engine.llamacpp_backend import LlamaCppEngine
from engine.types import GenerationParams, LoadOptions, Message, ModelInfo
from tests.fixtures.gguf_model import CACHE_DIR

KV_BYTES_PER_TOKEN = 22 * 2 * 4 * 64 * 2  # TinyLlama: layers × (K, V) × KV heads × head dims × F16


def copy_bandwidth(threads: int, mib: int = 512, repeats: int = 5) -> float:
    """Bytes per second a large array copy moves (each byte read once and written once), split over
    `threads` as llama.cpp splits its work; best of `repeats`, the run least disturbed by other jobs."""
    from concurrent.futures import ThreadPoolExecutor

    src = np.ones(mib * 2**20 // 8, dtype=np.float64)
    dst = np.empty_like(src)
    bounds = [(i * len(src) // threads, (i + 1) * len(src) // threads) for i in range(threads)]
    best = float("inf")
    with ThreadPoolExecutor(threads) as pool:  # np.copyto releases the GIL
        for _ in range(repeats):
            t0 = time.perf_counter()
            list(pool.map(lambda b: np.copyto(dst[b[0]:b[1]], src[b[0]:b[1]]), bounds))
            best = min(best, time.perf_counter() - t0)
    return 2 * src.nbytes / best


def weight_bytes_per_token(path: Path) -> int:
    """Bytes of weights one token reads: every tensor but the embedding table."""
    import gguf

    reader = gguf.GGUFReader(str(path))
    return sum(int(t.n_bytes) for t in reader.tensors if t.name != "token_embd.weight")


def generation_speed(path: Path, tokens: int, rounds: int, threads: int) -> tuple[float, int]:
    """Median generation tokens/s over `rounds`, and the context length at the middle of an answer."""
    engine = LlamaCppEngine()
    engine.load(ModelInfo(path=path), LoadOptions(n_threads=threads))
    prompt = [Message("user", "Write a long story about python code. " * 12)]
    speeds, context = [], 0
    try:
        for seed in range(rounds):
            params = GenerationParams(max_tokens=tokens, seed=seed, stop=("\x00never",), prompt_lookup=False)
            stats = list(engine.generate(prompt, params, threading.Event()))[-1].stats
            speeds.append(stats.tokens_per_s)
            context = stats.prompt_tokens + stats.completion_tokens // 2
    finally:
        engine.unload()
    return statistics.median(speeds), context


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokens", type=int, default=96)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=physical_cores())
    ap.add_argument("--levels", default="", help="only these levels, comma-separated (default: every one cached)")
    args = ap.parse_args()
    wanted = {level.lower() for level in args.levels.split(",") if level}
    levels = [p for p in sorted(CACHE_DIR.glob("tinyllama-random-*.gguf"))
              if not wanted or p.stem.removeprefix("tinyllama-random-") in wanted]
    if not levels:
        raise SystemExit(f"No TinyLlama-shaped model in {CACHE_DIR}: python -m tests.fixtures.gguf_model tinyllama")
    sys.stdout.reconfigure(line_buffering=True)  # each level as soon as it is measured
    print("## Memory bandwidth\n")
    print(f"Array copy: 512 MiB over {args.threads} threads, best of 5, bytes read + written, measured again "
          f"right before each level (other jobs on the machine move it); {args.tokens} generated tokens, "
          f"median of {args.rounds}.\n")
    print("| level | copy bandwidth | bytes read per token | generation tok/s | ceiling tok/s "
          "| fraction of the ceiling |")
    print("|---|---|---|---|---|---|")
    for path in levels:
        bandwidth = copy_bandwidth(args.threads)
        speed, context = generation_speed(path, args.tokens, args.rounds, args.threads)
        per_token = weight_bytes_per_token(path) + context * KV_BYTES_PER_TOKEN
        level = path.name.removeprefix("tinyllama-random-").removesuffix(".gguf").upper()
        ceiling = bandwidth / per_token
        print(f"| {level} | {bandwidth / 1e9:.1f} GB/s | {per_token / 1e6:.0f} MB | {speed:.1f} | {ceiling:.1f} | "
              f"{speed / ceiling:.2f} |")

if __name__ == "__main__":
    main()
