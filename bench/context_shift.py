"""Context shift vs re-reading: how exact and how fast each is when a conversation outgrows its context.

The measurement behind engine/context.py's block drop (figures in docs/engine.md). A conversation of
fixed turns runs in a small context, the oldest exchange leaving it on every turn once it is full. At
each such turn the next-token logits of three ways of continuing are compared with a cold evaluation of
the kept text (a fresh cache, the whole prompt evaluated):

- shift: llama.cpp's context shift, as its CLI and server do it: the dropped exchange's KV cells are
  removed and the later ones moved down (`llama_memory_seq_rm`, `llama_memory_seq_add`; llama.cpp
  re-applies RoPE to the moved keys), then only the new turn is evaluated. The cache is carried from
  turn to turn, shifted again each time.
- gap: the same single shift, but the kept turns were evaluated at their old positions with nothing in
  the gap, so they never saw the dropped text. Its error is the rotation's own rounding alone.
- reread: the kept text evaluated again after the longest common prefix with the cache (what a block
  drop costs on the turn it happens).

Error measures: llama.cpp's tests/test-rope.cpp measure of a shifted rotation, sum|a-b| / sum|b| (it
asserts < 1e-4), the largest |a-b|, and whether the most likely next token is the same.

    python -m bench.context_shift [--shape tinyllama] [--quant Q4_K_M] [--n-ctx 512] [--turns 8]
"""

from __future__ import annotations

import argparse
import ctypes
import time
from dataclasses import dataclass

import llama_cpp
import numpy as np

import engine.context
from bench.workloads import chat_turn
from engine.context import fit_messages
from engine.llamacpp_backend import LlamaCppEngine
from engine.prompt_tokens import common_prefix
from engine.types import LoadOptions, Message, ModelInfo
from tests.fixtures.gguf_model import build_cached

ROPE_TOLERANCE = 1e-4  # tests/test-rope.cpp: GGML_ASSERT(diff / sum0 < 0.0001f)


class Context:
    """A bare llama.cpp context on a loaded model: decode at chosen positions, read the last logits."""

    def __init__(self, llm: llama_cpp.Llama) -> None:
        self.ctx = llm._ctx.ctx
        self.mem = llama_cpp.llama_get_memory(self.ctx)
        self.n_vocab = llm.n_vocab()
        self.n_batch = llm.n_batch
        self.batch = llama_cpp.llama_batch_init(self.n_batch, 0, 1)
        assert llama_cpp.llama_memory_can_shift(self.mem)

    def clear(self) -> None:
        llama_cpp.llama_memory_clear(self.mem, True)

    def decode(self, ids: list[int], pos: int) -> np.ndarray:
        """Evaluate `ids` at positions pos, pos+1, …; the logits after the last one."""
        for start in range(0, len(ids), self.n_batch):
            piece = ids[start:start + self.n_batch]
            b = self.batch
            b.n_tokens = len(piece)
            for i, tok in enumerate(piece):
                b.token[i], b.pos[i], b.n_seq_id[i], b.logits[i] = tok, pos + start + i, 1, False
                b.seq_id[i][0] = 0
            b.logits[len(piece) - 1] = True
            if llama_cpp.llama_decode(self.ctx, b) != 0:
                raise RuntimeError("llama_decode failed")
        out = llama_cpp.llama_get_logits_ith(self.ctx, -1)
        return np.ctypeslib.as_array(ctypes.cast(out, ctypes.POINTER(ctypes.c_float)),
                                     shape=(self.n_vocab,)).copy()

    def shift_out(self, p0: int, p1: int) -> None:
        """Remove positions [p0, p1) and move every later one down by p1 - p0 (context shift)."""
        assert llama_cpp.llama_memory_seq_rm(self.mem, 0, p0, p1)
        llama_cpp.llama_memory_seq_add(self.mem, 0, p1, -1, p0 - p1)


@dataclass
class Error:
    rel_l1: float
    max_abs: float
    same_top1: bool


def error(a: np.ndarray, cold: np.ndarray) -> Error:
    return Error(float(np.abs(a - cold).sum() / np.abs(cold).sum()), float(np.abs(a - cold).max()),
                 int(a.argmax()) == int(cold.argmax()))


def dropped_span(cached: list[int], prompt: list[int]) -> tuple[int, int, int] | None:
    """(p0, p1, n_kept): `prompt` is cached[:p0] + cached[p1:p1 + n_kept] + new tokens."""
    p0 = common_prefix(cached, prompt)
    for p1 in range(p0 + 1, len(cached)):
        n = common_prefix(cached[p1:], prompt[p0:])
        if n == len(cached) - p1:
            return p0, p1, n
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shape", default="tinyllama")
    ap.add_argument("--quant", default="Q4_K_M")
    ap.add_argument("--n-ctx", type=int, default=512)
    ap.add_argument("--turns", type=int, default=8, help="turns measured after the context is full")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--kv-f32", action="store_true", help="F32 KV cache instead of llama.cpp's default F16")
    args = ap.parse_args()

    engine.context.BLOCK_FRACTION = 0.0  # every exchange a block: one leaves per turn, as a shift would do it
    path = build_cached(args.shape, args.quant)
    eng = LlamaCppEngine()
    eng.load(ModelInfo(path=path), LoadOptions(n_ctx=args.n_ctx, n_threads=args.threads))  # builds prompts
    kv = {"type_k": llama_cpp.GGML_TYPE_F32, "type_v": llama_cpp.GGML_TYPE_F32} if args.kv_f32 else {}
    llms = [llama_cpp.Llama(model_path=str(path), n_ctx=args.n_ctx, n_threads=args.threads,
                            n_threads_batch=args.threads, use_mmap=False, verbose=False, **kv) for _ in range(2)]
    shifted, cold = Context(llms[0]), Context(llms[1])
    budget = args.n_ctx - 64

    history: list[Message] = [Message("system", "You are a helpful assistant.")]
    cached: list[int] = []
    rows: list[tuple[int, int, Error, Error, Error, float, float, float]] = []
    turn = 0
    while len(rows) < args.turns:
        user, answer = chat_turn(turn)
        convo = [*history, Message("user", user)]
        fit = fit_messages(convo, eng.count_tokens, budget)
        prompt = eng.prompt_ids([convo[i] for i in fit.kept])
        span = dropped_span(cached, prompt) if fit.forgotten else None
        if span is None:  # still fits (or a first turn): extend the cache
            p0 = common_prefix(cached, prompt)
            llama_cpp.llama_memory_seq_rm(shifted.mem, 0, p0, -1)
            shifted.decode(prompt[p0:], p0)
        else:
            p0, p1, n_kept = span
            t0 = time.perf_counter()
            shifted.shift_out(p0, p1)
            shift_logits = shifted.decode(prompt[p0 + n_kept:], p0 + n_kept)
            t_shift = time.perf_counter() - t0
            # gap: the kept text evaluated p1 - p0 positions further on, then shifted back
            cold.clear()
            cold.decode(prompt[:p0 + n_kept], p1 - p0)
            cold.shift_out(0, p1 - p0)
            gap_logits = cold.decode(prompt[p0 + n_kept:], p0 + n_kept)
            # reread: the common prefix kept, the rest evaluated again
            cold.clear()
            cold.decode(prompt[:p0], 0)
            t0 = time.perf_counter()
            reread_logits = cold.decode(prompt[p0:], p0)
            t_reread = time.perf_counter() - t0
            cold.clear()
            t0 = time.perf_counter()
            cold_logits = cold.decode(prompt, 0)
            t_cold = time.perf_counter() - t0
            rows.append((turn, len(prompt), error(shift_logits, cold_logits), error(gap_logits, cold_logits),
                         error(reread_logits, cold_logits), t_shift, t_reread, t_cold))
        cached = prompt
        history += [Message("user", user), Message("assistant", answer)]
        turn += 1

    print(f"{args.shape} {args.quant}, n_ctx {args.n_ctx}, {'F32' if args.kv_f32 else 'F16'} KV cache, "
          f"{args.threads} threads; one exchange leaves the "
          f"context each turn. Error against a cold evaluation of the kept text (next-token logits).\n")
    print("| turn | prompt | shift: rel L1 / max abs / same top-1 | gap (rotation only) | reread | "
          "shift s | reread s | cold s |")
    print("|---|---|---|---|---|---|---|---|")
    for t, n, s, g, r, ts, tr, tc in rows:
        print(f"| {t} | {n} | {s.rel_l1:.2e} / {s.max_abs:.3f} / {s.same_top1} | {g.rel_l1:.2e} / "
              f"{g.max_abs:.4f} / {g.same_top1} | {r.rel_l1:.2e} / {r.max_abs:.4f} / {r.same_top1} | "
              f"{ts:.3f} | {tr:.3f} | {tc:.3f} |")
    within = sum(s.rel_l1 < ROPE_TOLERANCE for _, _, s, *_ in rows)
    print(f"\nshift within test-rope's {ROPE_TOLERANCE:g}: {within}/{len(rows)} turns; "
          f"gap within it: {sum(g.rel_l1 < ROPE_TOLERANCE for _, _, _, g, *_ in rows)}/{len(rows)}")
    for llm in llms:
        llm.close()
    eng.unload()


if __name__ == "__main__":
    main()
