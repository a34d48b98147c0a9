"""Engine speed: our llama.cpp engine vs raw llama-cpp-python, same file and threads, one run.

Measures (targets in docs/benchmarks.md):
- generation and prompt tokens/s, ours ÷ raw (target ≥ 0.97×), runs interleaved so machine
  noise hits both sides alike;
- turn-N time to first token with ~1500 tokens of history, KV reuse vs cold (target ≤ 1.5 s
  and ≥ 10× faster than cold on 2 cores);
- model load with a warm page cache (target ≤ 1.5 s) and resident memory of a process that has
  loaded the model and answered (target ≤ model file + 450 MB), in a fresh process.

    python -m bench.engine_speed [--shape tinyllama] [--quant Q4_K_M] [--rounds 3]

Prints a Markdown section for docs/benchmarks.md.
"""

from __future__ import annotations

import platform
import statistics
import threading
import time

import llama_cpp

from bench.workloads import history, speed_arguments
from engine.hardware import cpu_flags
from engine.llamacpp_backend import LlamaCppEngine
from engine.types import GenerationParams, LoadOptions, Message, ModelInfo
from tests.fixtures.gguf_model import build_cached

SAMPLING = {"top_k": 40, "top_p": 0.95, "min_p": 0.05, "temp": 0.7, "repeat_penalty": 1.1}


def raw_generate(llm: llama_cpp.Llama, prompt: list[int], n: int) -> tuple[float, float]:
    """Prompt tokens/s and generation tokens/s for plain llama-cpp-python usage."""
    llm.reset()
    t0 = time.perf_counter()
    t_first = None
    count = 0
    for tok in llm.generate(prompt, **SAMPLING):
        if t_first is None:
            t_first = time.perf_counter()
        llm.detokenize([tok])  # a raw user decodes text too
        count += 1
        if count >= n:
            break
    t_end = time.perf_counter()
    return len(prompt) / (t_first - t0), (count - 1) / (t_end - t_first)


def ours_generate(engine: LlamaCppEngine, messages: list[Message], n: int) -> tuple[float, float, int]:
    params = GenerationParams(max_tokens=n, temperature=0.7, top_k=40, top_p=0.95, min_p=0.05,
                              repeat_penalty=1.1, stop=("\x00never",))
    last = list(engine.generate(messages, params, threading.Event()))[-1]
    s = last.stats
    return s.prompt_tokens_per_s, s.tokens_per_s, s.completion_tokens


def turn_ttft(path, threads: int, target_tokens: int = 1500) -> tuple[int, float, float]:
    """History tokens, warm TTFT (cache holds the conversation), cold TTFT (fresh engine)."""
    engine = LlamaCppEngine()
    # No saved states: "cold" must re-read the history, as it did before states existed (bench.resume
    # measures what restoring a saved state gives).
    engine.load(ModelInfo(path=path), LoadOptions(n_threads=threads, state_memory=0))
    n = 1
    while engine.count_tokens([*history(n), Message("user", "x")]) < target_tokens:
        n += 1
    prev = [*history(n - 1), Message("user", "Please summarise what we discussed.")]
    params = GenerationParams(max_tokens=32, seed=1)
    first = list(engine.generate(prev, params, threading.Event()))
    answer = Message("assistant", "".join(c.text for c in first), token_ids=first[-1].stats.token_ids)
    turn = [*prev, answer, Message("user", "And what comes next?")]
    warm = list(engine.generate(turn, GenerationParams(max_tokens=1), threading.Event()))[-1].stats
    engine._llm.reset()
    cold = list(engine.generate(turn, GenerationParams(max_tokens=1), threading.Event()))[-1].stats
    engine.unload()
    return warm.prompt_tokens, warm.ttft_s, cold.ttft_s


MEMORY_PROBE = """
import json, sys, threading
from pathlib import Path
from engine.llamacpp_backend import LlamaCppEngine
from engine.types import GenerationParams, LoadOptions, Message, ModelInfo
engine = LlamaCppEngine()
report = engine.load(ModelInfo(path=Path(sys.argv[1])), LoadOptions())
list(engine.generate([Message("user", "Tell me a story. " * 50)], GenerationParams(max_tokens=32), threading.Event()))
rss = next(int(line.split()[1]) * 1024 for line in open("/proc/self/status") if line.startswith("VmRSS"))
print(json.dumps({"load_s": report.load_s, "rss": rss}))
"""


def load_and_memory(path) -> tuple[float, int]:
    """Load time and resident bytes after one answer, in a fresh process (warm page cache)."""
    import json
    import subprocess
    import sys

    runs = [json.loads(subprocess.run([sys.executable, "-c", MEMORY_PROBE, str(path)], capture_output=True,
                                      text=True, check=True).stdout) for _ in range(3)]
    return statistics.median(r["load_s"] for r in runs), max(r["rss"] for r in runs)


def main() -> None:
    args = speed_arguments(__doc__)
    path = build_cached(args.shape, args.quant)
    threads = args.threads

    messages = [Message("user", "Write a long story about python code. " * 12)]
    rows: dict[str, list[float]] = {"raw_pp": [], "raw_tg": [], "our_pp": [], "our_tg": []}
    for _ in range(args.rounds):
        # One model in memory at a time: an idle second context's threads would compete for the cores.
        engine = LlamaCppEngine()
        engine.load(ModelInfo(path=path), LoadOptions(n_threads=threads))
        prompt = engine.prompt_ids(messages)
        pp, tg, n = ours_generate(engine, messages, args.tokens)
        engine.unload()
        assert n == args.tokens, f"our engine stopped after {n} tokens"
        rows["our_pp"].append(pp)
        rows["our_tg"].append(tg)
        raw = llama_cpp.Llama(model_path=str(path), n_ctx=2048, n_threads=threads, n_threads_batch=threads,
                              use_mmap=LoadOptions().use_mmap, verbose=False)  # the same llama.cpp settings
        pp, tg = raw_generate(raw, prompt, args.tokens)
        raw.close()
        rows["raw_pp"].append(pp)
        rows["raw_tg"].append(tg)
    med = {k: statistics.median(v) for k, v in rows.items()}
    hist_tokens, warm, cold = turn_ttft(path, threads)
    load_s, rss = load_and_memory(path)
    size = path.stat().st_size

    print(f"## Engine speed — llama.cpp ({args.shape} shape, {args.quant})\n")
    print(f"Machine: {platform.machine()}, {threads} threads, CPU flags {' '.join(cpu_flags())}; "
          f"llama-cpp-python {llama_cpp.__version__}; {args.rounds} interleaved rounds, medians; "
          f"prompt {len(prompt)} tokens, {args.tokens} generated tokens.\n")
    print("| measure | raw llama-cpp-python | TinyChat engine | ratio | target |")
    print("|---|---|---|---|---|")
    print(f"| generation tokens/s | {med['raw_tg']:.2f} | {med['our_tg']:.2f} | "
          f"{med['our_tg'] / med['raw_tg']:.3f}× | ≥ 0.97× |")
    print(f"| prompt tokens/s | {med['raw_pp']:.1f} | {med['our_pp']:.1f} | "
          f"{med['our_pp'] / med['raw_pp']:.3f}× | ≥ 0.97× |")
    print(f"\nTurn-N time to first token with {hist_tokens} tokens of history: "
          f"**{warm:.3f} s with KV reuse** vs {cold:.2f} s cold — {cold / warm:.1f}× faster "
          "(targets ≤ 1.5 s, ≥ 10×).")
    print(f"\nModel load (warm page cache, median of 3 fresh processes): **{load_s:.2f} s** (target ≤ 1.5 s). "
          f"Resident memory after loading and answering: **{rss / 2**20:.0f} MiB** = model file "
          f"{size / 2**20:.0f} MiB + {(rss - size) / 2**20:.0f} MiB (target ≤ file + 450 MB).")


if __name__ == "__main__":
    main()
