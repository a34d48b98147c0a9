"""MLX engine speed: our MlxEngine vs raw `mlx_lm.stream_generate`, same model folder, one run.

Measures (targets in docs/benchmarks.md):
- generation and prompt tokens/s, ours ÷ raw (target ≥ 0.95×), runs interleaved so machine noise
  hits both sides alike, with the same prompt ids, sampler settings and seed;
- turn-2 time to first token with ~1500 tokens of history: prompt-cache reuse vs a cold engine.

    python -m bench.mlx_speed [--shape bench|tinyllama] [--bits 4|8|16] [--rounds 5]

The default shape is `tinyllama` on Apple Silicon and `bench` (4 layers × 512) elsewhere: the mlx
CPU wheel runs TinyLlama's shape at about 1 token/s on x86. Prints a Markdown section for
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import threading
import time
from pathlib import Path

from bench.workloads import history
from engine.mlx_backend import MlxEngine
from engine.select import is_apple_silicon
from engine.types import GenerationParams, LoadOptions, Message, ModelInfo
from tests.fixtures.hf_model import build_mlx_cached

SAMPLING = {"temperature": 0.7, "top_k": 40, "top_p": 0.95, "min_p": 0.05, "repeat_penalty": 1.1}


def load(path: Path) -> MlxEngine:
    engine = MlxEngine()
    engine.load(ModelInfo(path=path, engine="mlx"), LoadOptions())
    return engine


def ours(engine: MlxEngine, messages: list[Message], n: int, seed: int) -> tuple[float, float, int]:
    """Prompt tokens/s, generation tokens/s and tokens produced, from our engine's own stats."""
    params = GenerationParams(max_tokens=n, seed=seed, stop=("\x00never",), **SAMPLING)
    s = list(engine.generate(messages, params, threading.Event()))[-1].stats
    return s.prompt_tokens_per_s, s.tokens_per_s, s.completion_tokens


def raw(model, tokenizer, prompt: list[int], n: int, seed: int) -> tuple[float, float, int]:
    """The same measures for plain mlx-lm usage: stream_generate with a sampler and a repeat penalty."""
    import mlx.core as mx
    from mlx_lm import stream_generate
    from mlx_lm.sample_utils import make_logits_processors, make_sampler

    mx.random.seed(seed)
    sampler = make_sampler(temp=SAMPLING["temperature"], top_p=SAMPLING["top_p"], min_p=SAMPLING["min_p"],
                           top_k=SAMPLING["top_k"])
    processors = make_logits_processors(repetition_penalty=SAMPLING["repeat_penalty"], repetition_context_size=64)
    t0 = time.perf_counter()
    t_first, count = None, 0
    for _ in stream_generate(model, tokenizer, prompt, max_tokens=n, sampler=sampler,
                             logits_processors=processors):
        if t_first is None:
            t_first = time.perf_counter()
        count += 1
    t_end = time.perf_counter()
    assert t_first is not None
    return len(prompt) / (t_first - t0), (count - 1) / (t_end - t_first), count


def seed_without_early_stop(engine: MlxEngine, messages: list[Message], n: int) -> int:
    """A seed whose sampled answer runs the full `n` tokens (a random model can emit an end token)."""
    for seed in range(1, 50):
        if ours(engine, messages, n, seed)[2] == n:
            return seed
    raise RuntimeError("every seed hit an end token; use fewer --tokens")


def turn_ttft(path: Path, target_tokens: int = 1500) -> tuple[int, float, float]:
    """History tokens, warm turn-2 TTFT (cache holds the conversation), cold TTFT (fresh engine)."""
    engine = load(path)
    n = 1
    while engine.count_tokens([*history(n), Message("user", "x")]) < target_tokens:
        n += 1
    prev = [*history(n - 1), Message("user", "Please summarise what we discussed.")]
    first = list(engine.generate(prev, GenerationParams(max_tokens=32, seed=1), threading.Event()))
    answer = Message("assistant", "".join(c.text for c in first), token_ids=first[-1].stats.token_ids)
    turn = [*prev, answer, Message("user", "And what comes next?")]
    warm = list(engine.generate(turn, GenerationParams(max_tokens=1), threading.Event()))[-1].stats
    engine.unload()
    cold_engine = load(path)
    cold = list(cold_engine.generate(turn, GenerationParams(max_tokens=1), threading.Event()))[-1].stats
    cold_engine.unload()
    return warm.prompt_tokens, warm.ttft_s, cold.ttft_s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", default="tinyllama" if is_apple_silicon() else "bench")
    ap.add_argument("--bits", type=int, choices=(4, 8, 16), default=4)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--tokens", type=int, default=96)
    ap.add_argument("--history", type=int, default=1500, help="history tokens for the turn-2 TTFT")
    args = ap.parse_args()
    import mlx.core as mx
    import mlx_lm
    from mlx_lm import load as mlx_load

    path = build_mlx_cached(args.shape, None if args.bits == 16 else args.bits)
    engine = load(path)
    model, tokenizer = mlx_load(str(path))  # the raw side: its own copy, as a plain mlx-lm user has

    def messages(r: int) -> list[Message]:
        # A different start per round, so our engine's prompt cache cannot skip the prompt.
        return [Message("user", f"Round {r}. " + "Write a long story about python code. " * 12)]

    seed = seed_without_early_stop(engine, messages(-1), args.tokens)
    rows: dict[str, list[float]] = {"raw_pp": [], "raw_tg": [], "our_pp": [], "our_tg": []}
    prompt_len = 0
    for r in range(args.rounds):
        prompt = engine.prompt_ids(messages(r))
        prompt_len = len(prompt)
        # Alternate which side goes first, so a drift in machine load favours neither.
        if r % 2 == 0:
            pp, tg, n = ours(engine, messages(r), args.tokens, seed)
            rpp, rtg, rn = raw(model, tokenizer, prompt, args.tokens, seed)
        else:
            rpp, rtg, rn = raw(model, tokenizer, prompt, args.tokens, seed)
            pp, tg, n = ours(engine, messages(r), args.tokens, seed)
        if n != args.tokens or rn != args.tokens:
            print(f"(round {r} skipped: an end token after {n}/{rn} tokens)")
            continue
        rows["our_pp"].append(pp)
        rows["our_tg"].append(tg)
        rows["raw_pp"].append(rpp)
        rows["raw_tg"].append(rtg)
    engine.unload()
    del model, tokenizer
    med = {k: statistics.median(v) for k, v in rows.items()}
    # Ratios are medians of per-round ratios: each pair ran back to back under the same load.
    tg_ratio = statistics.median(o / r for o, r in zip(rows["our_tg"], rows["raw_tg"], strict=True))
    pp_ratio = statistics.median(o / r for o, r in zip(rows["our_pp"], rows["raw_pp"], strict=True))
    hist_tokens, warm, cold = turn_ttft(path, args.history)

    where = "Apple Silicon" if is_apple_silicon() else "Linux CPU" if platform.system() == "Linux" else "CPU"
    print(f"## MLX ({where}) — {args.shape} shape, {args.bits}-bit\n")
    print(f"Machine: {platform.machine()} {platform.system()}, mlx {mx.__version__} on {mx.default_device()}, "
          f"mlx-lm {mlx_lm.__version__}; {len(rows['our_tg'])} interleaved rounds, medians; prompt {prompt_len} "
          f"tokens, {args.tokens} generated tokens, same seed and sampling on both sides; ratio = median of "
          "per-round ratios.\n")
    print("| measure | raw mlx_lm.stream_generate | TinyChat MlxEngine | ratio | target |")
    print("|---|---|---|---|---|")
    print(f"| generation tokens/s | {med['raw_tg']:.2f} | {med['our_tg']:.2f} | "
          f"{tg_ratio:.3f}× | ≥ 0.95× |")
    print(f"| prompt tokens/s | {med['raw_pp']:.1f} | {med['our_pp']:.1f} | "
          f"{pp_ratio:.3f}× | — |")
    print(f"\nTurn-2 time to first token with {hist_tokens} tokens of history: "
          f"**{warm:.3f} s with prompt-cache reuse** vs {cold:.2f} s cold — {cold / warm:.1f}× faster.")


if __name__ == "__main__":
    main()
