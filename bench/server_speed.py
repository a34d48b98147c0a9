"""Local server speed: the same model answering through `tinychat serve` (the official `openai` client,
streaming) vs our engine in-process, same file, threads, sampling and seed.

Measures (targets in docs/benchmarks.md):
- generation tokens/s through the server ÷ in-process (target ≥ 0.95×), rounds interleaved so machine
  noise hits both sides alike; the server process and this one never generate at the same time;
- time to first token through the server, next to the engine's own in-process figure.

    python -m bench.server_speed [--shape tinyllama] [--quant Q4_K_M] [--rounds 5] [--tokens 96]

Prints a Markdown section for docs/benchmarks.md.
"""

from __future__ import annotations

import platform
import statistics
import threading
import time

from openai import OpenAI

from bench.workloads import speed_arguments
from engine.hardware import physical_cores
from engine.llamacpp_backend import LlamaCppEngine
from engine.types import GenerationParams, LoadOptions, Message, ModelInfo
from tests.fixtures.gguf_model import build_cached
from tests.served import start_tinychat

PROMPT = "Tell me a long story about a lighthouse keeper and the sea."


def in_process(engine: LlamaCppEngine, tokens: int, seed: int) -> tuple[float, float, int]:
    """(generation tokens/s, time to first token, completion tokens) from the engine's own stats."""
    params = GenerationParams(max_tokens=tokens, seed=seed)
    last = list(engine.generate([Message("user", PROMPT)], params, threading.Event()))[-1]
    s = last.stats
    return s.tokens_per_s, s.ttft_s, s.completion_tokens


def through_server(client: OpenAI, model: str, tokens: int, seed: int) -> tuple[float, float, int]:
    """The same measures as a client sees them: first and last streamed text, tokens from `usage`."""
    defaults = GenerationParams()
    t0 = time.perf_counter()
    t_first = t_last = 0.0
    completion = 0
    for chunk in client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": PROMPT}], max_tokens=tokens, seed=seed,
            temperature=defaults.temperature, top_p=defaults.top_p, stream=True,
            stream_options={"include_usage": True}):
        if chunk.choices and chunk.choices[0].delta.content:
            t_last = time.perf_counter()
            t_first = t_first or t_last
        if chunk.usage:
            completion = chunk.usage.completion_tokens
    return (completion - 1) / (t_last - t_first), t_first - t0, completion


def main() -> None:
    args = speed_arguments(__doc__)
    path = build_cached(args.shape, args.quant)
    threads = args.threads
    engine = LlamaCppEngine()
    engine.load(ModelInfo(path=path), LoadOptions(n_threads=threads))
    served = start_tinychat(path, "--threads", str(threads))
    try:
        client = OpenAI(base_url=served.url, api_key="unused", max_retries=0)
        model = client.models.list().data[0].id
        in_process(engine, 8, 0), through_server(client, model, 8, 0)  # warm both caches
        ours, server = [], []
        for r in range(args.rounds):
            ours.append(in_process(engine, args.tokens, seed=r))
            server.append(through_server(client, model, args.tokens, seed=r))
    finally:
        served.stop()
        engine.unload()
    tg_in, tg_srv = (statistics.median(x[0] for x in xs) for xs in (ours, server))
    ttft_in, ttft_srv = (statistics.median(x[1] for x in xs) for xs in (ours, server))
    same = all(a[2] == b[2] for a, b in zip(ours, server, strict=True))
    print(f"## Local server ({args.shape} shape, {args.quant})\n")
    print(f"Machine: {platform.machine()}, {physical_cores()} physical cores, {threads} thread(s) per engine; "
          f"{args.rounds} interleaved rounds, medians; "
          f"{args.tokens} tokens per answer (same seeds on both sides: same lengths {'yes' if same else 'NO'}).\n")
    print("| measure | in-process engine | through `tinychat serve` | ratio | target |")
    print("|---|---|---|---|---|")
    print(f"| generation tokens/s | {tg_in:.2f} | {tg_srv:.2f} | {tg_srv / tg_in:.3f}× | ≥ 0.95× |")
    print(f"| time to first token | {ttft_in * 1000:.0f} ms | {ttft_srv * 1000:.0f} ms | — | — |")


if __name__ == "__main__":
    main()
