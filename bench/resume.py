"""Resuming conversations and prompt lookup on the TinyLlama-shaped Q4_K_M, llama.cpp, one run.

Measures (targets in docs/benchmarks.md):
- reopening a ~1,500-token conversation after restarting the engine: time to first token with its saved
  state (read from the state folder) against re-reading it (≤ 1.0 s, ≥ 10× faster);
- alternating between two ~1,500-token conversations five times: each time to first token, the other
  conversation's state coming from memory (≤ 0.5 s);
- prompt lookup: generation tokens/s with it ÷ without, on answers that quote the conversation (the
  scripted TinyLlama-shaped model asked again for an answer it gave, and asked to correct a text that is
  its answer: ≥ 1.5×) and on answers with nothing to quote (the random-weight model: ≥ 0.97×). Rounds
  interleave both sides with the same seed, so both produce the same tokens.

    python -m bench.resume [--rounds 5] [--mlx] [--only reopen,alternate,lookup] [--threads N]

`--mlx` adds prompt lookup on the MLX engine (mlx-lm on this CPU, the reduced `bench` shape, 4-bit).

Prints a Markdown section for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import threading
from pathlib import Path

from bench.workloads import QUOTE_SCRIPT, history
from engine.backend import Engine
from engine.hardware import physical_cores
from engine.select import create_engine
from engine.types import DEFAULT_STATE_MEMORY, GenerationParams, GenerationStats, LoadOptions, Message, ModelInfo
from tests.fixtures.gguf_model import build_cached

TARGET_TOKENS = 1500
THREADS = [physical_cores()]  # --threads: one thread suffers least when other jobs crowd the cores


def load(path: Path, state_dir: Path | None = None, engine: str = "llama.cpp") -> Engine:
    loaded = create_engine(engine)
    loaded.load(ModelInfo(path=path, engine=engine), LoadOptions(n_threads=THREADS[0], state_dir=state_dir))
    return loaded


def answer(engine: Engine, messages: list[Message], params: GenerationParams) -> tuple[str, GenerationStats]:
    chunks = list(engine.generate(messages, params, threading.Event()))
    assert chunks[-1].finish_reason in ("stop", "length"), chunks[-1]
    return "".join(c.text for c in chunks), chunks[-1].stats


def follow_up(messages: list[Message], text: str, stats: GenerationStats, question: str) -> list[Message]:
    return [*messages, Message("assistant", text, token_ids=stats.token_ids), Message("user", question)]


def long_conversation(engine: Engine, topic: str) -> list[Message]:
    """A conversation of about TARGET_TOKENS tokens ending with a question."""
    n = 1
    while engine.count_tokens([*history(n, topic), Message("user", "x")]) < TARGET_TOKENS:
        n += 1
    return [*history(n - 1, topic), Message("user", "Please summarise what we discussed.")]


def reopen(path: Path, folder: Path) -> dict[str, float]:
    """TTFT of the next turn of a conversation answered before a restart: saved state vs re-reading."""
    params = GenerationParams(max_tokens=32, seed=1)
    before = load(path, folder)
    convo = long_conversation(before, "Reopened.")
    text, stats = answer(before, convo, params)
    before.unload()
    turn = follow_up(convo, text, stats, "And what comes next?")
    restarted = load(path, folder)
    _, warm = answer(restarted, turn, GenerationParams(max_tokens=1))
    restarted.unload()
    fresh = load(path)  # no folder: nothing saved to resume from
    _, cold = answer(fresh, turn, GenerationParams(max_tokens=1))
    fresh.unload()
    state = max(folder.glob("*.kvstate"), key=lambda p: p.stat().st_size)
    return {"tokens": warm.prompt_tokens, "reused": warm.reused_tokens, "warm": warm.ttft_s, "cold": cold.ttft_s,
            "state_bytes": state.stat().st_size, "state_tokens": stats.prompt_tokens + stats.completion_tokens}


def alternate(path: Path, rounds: int = 5) -> dict[str, object]:
    """TTFT of each turn while two long conversations take turns on one engine (states in memory)."""
    engine = load(path)
    params = GenerationParams(max_tokens=16, seed=2)
    convos = {topic: long_conversation(engine, topic) for topic in ("Gardening.", "Astronomy.")}
    ttfts, reused, tokens = [], [], []
    for i in range(rounds + 1):
        for topic, convo in convos.items():
            text, stats = answer(engine, convo, params)
            if i:  # the first round reads both conversations once
                ttfts.append(stats.ttft_s)
                reused.append(stats.reused_tokens)
                tokens.append(stats.prompt_tokens)
            convos[topic] = follow_up(convo, text, stats, f"Tell me more ({i}).")
    memory = engine._resume.cache.memory_bytes
    engine.unload()
    return {"ttfts": ttfts, "reused": min(reused), "tokens": max(tokens), "memory": memory}


def lookup_ratios(random_path: Path, scripted_path: Path, rounds: int,
                  engine_name: str = "llama.cpp") -> dict[str, list[tuple[float, float]]]:
    """(tok/s without, with) prompt lookup per round, for each workload."""
    scripted = load(scripted_path, engine=engine_name)
    greedy = GenerationParams(temperature=0.0, max_tokens=128)
    said, said_stats = answer(scripted, [Message("user", "Hello")], greedy)
    workloads = {
        "asked again for its answer": (scripted, [Message("user", "Hello"), Message(
            "assistant", said, token_ids=said_stats.token_ids), Message("user", "Say that again, please.")]),
        "asked to correct a text": (scripted, [Message("user", "Correct the typos in this text:\n" + QUOTE_SCRIPT)]),
    }
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in [*workloads, "nothing to quote"]}
    for r in range(rounds):
        for name, (engine, convo) in workloads.items():
            speeds = {}
            for look in ((False, True) if r % 2 == 0 else (True, False)):
                params = GenerationParams(temperature=0.7, seed=r, max_tokens=128, prompt_lookup=look)
                _, stats = answer(engine, convo, params)
                speeds[look] = stats.tokens_per_s
            results[name].append((speeds[False], speeds[True]))
    scripted.unload()
    plain = load(random_path, engine=engine_name)  # one model in memory at a time: an idle one's threads would compete
    story = [Message("user", "Write a long story about python code. " * 12)]
    for r in range(rounds):
        speeds = {}
        for look in ((False, True) if r % 2 == 0 else (True, False)):
            params = GenerationParams(max_tokens=96, seed=r, stop=("\x00never",), prompt_lookup=look)
            _, stats = answer(plain, story, params)
            speeds[look] = stats.tokens_per_s
        results["nothing to quote"].append((speeds[False], speeds[True]))
    plain.unload()
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--mlx", action="store_true", help="also prompt lookup on the MLX engine")
    ap.add_argument("--threads", type=int, default=physical_cores())
    ap.add_argument("--only", default="reopen,alternate,lookup",
                    help="the parts to measure, comma-separated (a short run on a busy machine)")
    args = ap.parse_args()
    parts = set(args.only.split(","))
    THREADS[0] = args.threads
    sys.stdout.reconfigure(line_buffering=True)  # each figure as soon as it is measured
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("engine.resume").setLevel(logging.INFO)  # on stderr: how long each restore took
    path = build_cached("tinyllama", "Q4_K_M")
    scripted_path = build_cached("tinyllama", "Q4_K_M", scripted=True, script=QUOTE_SCRIPT)
    print("## Resuming conversations and prompt lookup\n")
    print(f"llama.cpp, TinyLlama shape, Q4_K_M, {args.threads} threads; "
          f"`python -m bench.resume {' '.join(sys.argv[1:])}`, one run.\n")
    if "reopen" in parts:
        print_reopen(path)
    if "alternate" in parts:
        print_alternate(path)
    if "lookup" in parts:
        print_lookup("llama.cpp, TinyLlama shape, Q4_K_M", lookup_ratios(path, scripted_path, args.rounds))
    if args.mlx:
        from tests.fixtures.hf_model import build_mlx_cached

        print()
        print_lookup("MLX on this CPU, `bench` shape, 4-bit", lookup_ratios(
            build_mlx_cached("bench", 4), build_mlx_cached("bench", 4, scripted=True, script=QUOTE_SCRIPT),
            args.rounds, "mlx"))


def print_reopen(path: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        r = reopen(path, Path(tmp))
    print(f"Reopen a {r['tokens']}-token conversation after restarting the engine: time to first token "
          f"**{r['warm']:.3f} s** from its saved state ({r['reused']} tokens restored from the state folder) vs "
          f"{r['cold']:.2f} s re-reading it — **{r['cold'] / r['warm']:.1f}× faster** (targets ≤ 1.0 s, ≥ 10×). "
          f"The state of {r['state_tokens']} tokens takes {r['state_bytes'] / 1e6:.1f} MB on disk "
          f"({r['state_bytes'] / r['state_tokens'] / 1e3:.1f} kB a token).\n")


def print_alternate(path: Path) -> None:
    a = alternate(path)
    ttfts = a["ttfts"]
    print(f"Alternate between two ~{a['tokens']}-token conversations five times ({len(ttfts)} turns, each "
          f"resuming at least {a['reused']} tokens from memory): time to first token median "
          f"**{statistics.median(ttfts):.3f} s**, max **{max(ttfts):.3f} s** (target ≤ 0.5 s each): "
          f"{', '.join(f'{t:.2f}' for t in ttfts)} s. States in memory at the end: {a['memory'] / 1e6:.0f} MB "
          f"(budget {DEFAULT_STATE_MEMORY / 1e6:.0f} MB).\n")


def print_lookup(title: str, lookup: dict[str, list[tuple[float, float]]]) -> None:
    print(f"| prompt lookup ({title}) | tok/s without | tok/s with | ratio (median of rounds) | per round | target |")
    print("|---|---|---|---|---|---|")
    for name, pairs in lookup.items():
        target = "≥ 0.97×" if name == "nothing to quote" else "≥ 1.5×"
        ratios = [on / off for off, on in pairs]
        print(f"| {name} | {statistics.median(p[0] for p in pairs):.1f} | "
              f"{statistics.median(p[1] for p in pairs):.1f} | {statistics.median(ratios):.2f}× | "
              f"{' '.join(f'{x:.2f}' for x in ratios)} | {target} |")


if __name__ == "__main__":
    main()
