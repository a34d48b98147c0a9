"""llama.cpp builds compared on this machine: the main (AVX2) build against baseline builds for older CPUs.

Each measurement is a fresh process (llama-cpp-python opens its library once, at import), forced onto one
build with TINYCHAT_LLAMA_BUILD and TINYCHAT_LLAMA_BASELINE_DIR; the builds take turns within each round so
machine noise hits them alike, and the figures are reported as ratios to the main build.

    python -m bench.cpu_builds [--baseline NAME=DIR ...] [--rounds 3] [--prompt 96] [--tokens 24] [--threads N]

Without --baseline it measures the cached baseline build (packaging/llama_baseline.py). Prints a Markdown
table for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
from pathlib import Path

from engine.hardware import cpu_flags, physical_cores
from tests.fixtures.gguf_model import build_cached

ROOT = Path(__file__).resolve().parents[1]


def child(model: Path, prompt_words: int, tokens: int, threads: int) -> None:
    """In the forced process: prompt and generation tokens/s of one answer, printed as JSON."""
    from engine import cpu_build
    from engine.llamacpp_backend import LlamaCppEngine
    from engine.types import GenerationParams, LoadOptions, Message, ModelInfo

    choice = cpu_build.apply()
    engine = LlamaCppEngine()
    engine.load(ModelInfo(path=model), LoadOptions(n_threads=threads))
    text = " ".join(f"word{i % 50}" for i in range(prompt_words))
    params = GenerationParams(max_tokens=tokens, temperature=0.7, seed=1, stop=("\x00never",))
    stats = list(engine.generate([Message("user", text)], params, threading.Event()))[-1].stats
    print(json.dumps({"build": choice.build, "prompt_tokens": stats.prompt_tokens,
                      "prompt_tps": stats.prompt_tokens_per_s, "gen_tps": stats.tokens_per_s}))


def measure(name: str, folder: Path | None, model: Path, prompt_words: int, tokens: int,
            threads: int) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TINYCHAT_LLAMA_BUILD": "baseline" if folder else "avx2"}
    env.pop("LLAMA_CPP_LIB_PATH", None)
    if folder:
        env["TINYCHAT_LLAMA_BASELINE_DIR"] = str(folder)
    cmd = [sys.executable, "-m", "bench.cpu_builds", "--child", str(model), "--prompt", str(prompt_words),
           "--tokens", str(tokens), "--threads", str(threads)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True, timeout=1800)
    result = json.loads(out.stdout.splitlines()[-1])
    assert result["build"] == ("baseline" if folder else "avx2"), f"{name} ran the {result['build']} build"
    print(f"  {name}: prompt {result['prompt_tps']:.1f} tok/s, generation {result['gen_tps']:.2f} tok/s",
          file=sys.stderr, flush=True)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", action="append", default=[], help="NAME=DIR of a baseline build (repeatable)")
    ap.add_argument("--shape", default="tinyllama")
    ap.add_argument("--quant", default="Q4_K_M")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--prompt", type=int, default=96, help="words in the prompt")
    ap.add_argument("--tokens", type=int, default=24, help="tokens to generate")
    ap.add_argument("--threads", type=int, default=physical_cores(),
                    help="default: one per physical core; 1 keeps a busy machine's noise out of the ratios")
    ap.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.prompt, args.tokens, args.threads)
        return
    builds: dict[str, Path | None] = {"AVX2 (main)": None}
    for spec in args.baseline:
        name, _, folder = spec.partition("=")
        builds[name] = Path(folder)
    if not args.baseline:
        sys.path.insert(0, str(ROOT / "packaging"))
        from llama_baseline import ISA, ensure_built

        builds[" + ".join(ISA)] = ensure_built()
    model = build_cached(args.shape, args.quant)
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in builds}
    for r in range(args.rounds):
        print(f"round {r + 1}/{args.rounds}", file=sys.stderr, flush=True)
        for name, folder in builds.items():
            runs[name].append(measure(name, folder, model, args.prompt, args.tokens, args.threads))
    main_prompt = statistics.median(x["prompt_tps"] for x in runs["AVX2 (main)"])
    main_gen = statistics.median(x["gen_tps"] for x in runs["AVX2 (main)"])
    load = os.getloadavg()
    print(f"\nModel {model.name}, {args.threads} threads, CPU flags {' '.join(cpu_flags())}, "
          f"{args.rounds} interleaved rounds (medians), prompt {runs['AVX2 (main)'][0]['prompt_tokens']} tokens, "
          f"{args.tokens} generated; load average at the end {load[0]:.1f}.\n")
    print("| build | prompt tok/s | × main | generation tok/s | × main |")
    print("|---|---|---|---|---|")
    for name, results in runs.items():
        p = statistics.median(x["prompt_tps"] for x in results)
        g = statistics.median(x["gen_tps"] for x in results)
        print(f"| {name} | {p:.1f} | {p / main_prompt:.2f} | {g:.2f} | {g / main_gen:.2f} |")


if __name__ == "__main__":
    main()
