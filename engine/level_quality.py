"""How close a quantization level's answers are to a reference level's, measured on a fixed text.

The method is llama.cpp's `llama-perplexity --kl-divergence`: run the reference model over the text
once and keep its next-token distributions; run each level over exactly the same tokens and compare,
position by position:
- mean KL divergence KL(reference ‖ level) of the next-token distributions (0: identical);
- top-1 agreement: how often both put the same token first ("picks the same next word");
- perplexity of the text under the level, next to the reference's.
Uncertainties are llama.cpp's: the standard error of the mean over positions, and √(p(1−p)/(n−1)) for
the agreement. Per-chunk figures show the spread.

Choices, each with its reason:
- The text is cut into `Windows.chunks` windows spread evenly over it (so every kind of text is
  sampled whatever the count), each evaluated from an empty cache as `<s>` + `length − 1` tokens.
  Positions before `first` are context only: llama.cpp scores the second half of each window; a
  quarter of context keeps each position conditioned on ~100 tokens (a chat turn's worth) for a
  third less evaluation. Three windows of 384 (861 positions) separate neighbouring levels by many
  standard errors and keep a level's whole measurement (with the two speed turns) to 31–50 s on
  two idle cores (docs/benchmarks.md).
- The reference keeps, per position, its `top_k` most likely tokens' log-probabilities and the
  log of the remaining mass, not the whole vocabulary: 861 positions × 32,003 tokens would be
  55 MB even in llama.cpp's 16-bit form, against 7 MB here. KL is computed over those tokens plus
  the remainder as one outcome, which is exact when the remainder is negligible (a real model's
  distributions) and otherwise a lower bound (random-weight test models). Probabilities are
  kept as float32 computed in float64 exactly as the level's are, so a file compared with itself
  gives KL = 0 and 100 % agreement exactly.
"""

from __future__ import annotations

import hashlib
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.level_logits import LogitSource
from engine.types import EngineError

TOP_K = 1024
_BLOCK = 64  # rows converted to float64 at a time: bounds the temporary memory to a few MB

StepFn = Callable[[float], None]  # fraction of this pass done


@dataclass(frozen=True)
class Windows:
    """Which tokens are evaluated: `chunks` windows of `length` tokens (`<s>` first), each scored from
    position `first` on. The defaults are the app's; tests use shorter ones."""

    chunks: int = 3
    length: int = 384
    first: int = 96

    @property
    def scored(self) -> int:
        """Positions scored in all."""
        return self.chunks * (self.length - 1 - self.first)


DEFAULT_WINDOWS = Windows()


@dataclass(frozen=True)
class Reference:
    """A reference level's distributions over the evaluation text (see the module docstring)."""

    label: str
    identity: str
    text_sha256: str
    chunks: np.ndarray  # (n_chunks, chunk_len) int32: the exact tokens evaluated
    first: int
    top_ids: np.ndarray  # (n_positions, k) int32
    top_logp: np.ndarray  # (n_positions, k) float32
    tail_logp: np.ndarray  # (n_positions,) float32, log of the probability outside top_ids (-inf: none)
    top1: np.ndarray  # (n_positions,) int32
    nll: np.ndarray  # (n_positions,) float32, −log p(actual next token)
    n_vocab: int

    @property
    def positions_per_chunk(self) -> int:
        return self.chunks.shape[1] - 1 - self.first

    @property
    def windows(self) -> Windows:
        """The windows this reference was measured with."""
        return Windows(self.chunks.shape[0], self.chunks.shape[1], self.first)

    def save(self, path: Path) -> None:
        """Write to `path` (a .npz file) atomically."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(tmp, label=self.label, identity=self.identity, text_sha256=self.text_sha256, chunks=self.chunks,
                 first=self.first, top_ids=self.top_ids, top_logp=self.top_logp, tail_logp=self.tail_logp,
                 top1=self.top1, nll=self.nll, n_vocab=self.n_vocab)
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> Reference:
        """Read what `save` wrote; raises EngineError if the file is unreadable."""
        try:
            with np.load(path, allow_pickle=False) as z:
                return cls(label=str(z["label"]), identity=str(z["identity"]), text_sha256=str(z["text_sha256"]),
                           chunks=z["chunks"], first=int(z["first"]), top_ids=z["top_ids"], top_logp=z["top_logp"],
                           tail_logp=z["tail_logp"], top1=z["top1"], nll=z["nll"], n_vocab=int(z["n_vocab"]))
        except (OSError, ValueError, KeyError) as e:
            raise EngineError("The saved reference figures could not be read; they will be measured again.",
                              detail=f"{path}: {e!r}") from e


@dataclass(frozen=True)
class Quality:
    """A level against the reference. `top1` is a fraction; `*_se` are standard errors."""

    reference: str
    kl_mean: float
    kl_se: float
    kl_median: float
    kl_p99: float
    kl_max: float
    top1: float
    top1_se: float
    ppl: float
    ppl_se: float
    reference_ppl: float
    tokens: int
    chunk_kl: tuple[float, ...]
    chunk_top1: tuple[float, ...]


def text_sha256(text: str) -> str:
    """The digest that ties a saved reference to the text it was measured on."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def eval_chunks(tokens: list[int], bos: int, chunks: int, chunk_len: int) -> np.ndarray:
    """`chunks` windows of `<s>` + `chunk_len − 1` text tokens, spread evenly over `tokens`."""
    body = chunk_len - 1
    if len(tokens) < body:
        raise EngineError("The evaluation text is too short for this measurement.",
                          detail=f"{len(tokens)} tokens < {body}")
    span = len(tokens) - body
    starts = [round(i * span / (chunks - 1)) for i in range(chunks)] if chunks > 1 else [0]
    return np.array([[bos, *tokens[s:s + body]] for s in starts], dtype=np.int32)


def _log_softmax(rows: np.ndarray) -> np.ndarray:
    x = rows.astype(np.float64)
    x -= x.max(axis=1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=1, keepdims=True))


def _tail(logp: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """log of the probability outside `ids`, per row (−inf when `ids` hold the whole vocabulary)."""
    rest = logp.copy()
    np.put_along_axis(rest, ids, -np.inf, axis=1)
    top = rest.max(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = top + np.log(np.exp(rest - top[:, None]).sum(axis=1))
    return np.where(np.isfinite(top), out, -np.inf)


def _scored(logits: np.ndarray, chunk: np.ndarray, first: int) -> tuple[np.ndarray, np.ndarray]:
    """The rows that are scored and the tokens that follow each."""
    return logits[first:len(chunk) - 1], chunk[first + 1:]


def build_reference(source: LogitSource, text: str, *, label: str, identity: str,
                    windows: Windows = DEFAULT_WINDOWS, top_k: int = TOP_K,
                    cancel: threading.Event | None = None, step: StepFn | None = None) -> Reference:
    """Run the reference model over the text and keep its distributions."""
    first = windows.first
    chunks = eval_chunks(source.tokenize(text), source.bos, windows.chunks, windows.length)
    k = min(top_k, source.n_vocab)
    ids_l, logp_l, tail_l, top1_l, nll_l = [], [], [], [], []
    for c, chunk in enumerate(chunks):
        rows, targets = _scored(source.logits(chunk.tolist(), cancel), chunk, first)
        for b in range(0, len(rows), _BLOCK):
            logp = _log_softmax(rows[b:b + _BLOCK])
            ids = np.argsort(-logp, axis=1, kind="stable")[:, :k].astype(np.int32)
            ids_l.append(ids)
            logp_l.append(np.take_along_axis(logp, ids, axis=1).astype(np.float32))
            tail_l.append(_tail(logp, ids).astype(np.float32))
            top1_l.append(ids[:, 0])
            nll_l.append(-np.take_along_axis(logp, targets[b:b + _BLOCK, None], axis=1)[:, 0].astype(np.float32))
        if step is not None:
            step((c + 1) / len(chunks))
    return Reference(label=label, identity=identity, text_sha256=text_sha256(text), chunks=chunks, first=first,
                     top_ids=np.concatenate(ids_l), top_logp=np.concatenate(logp_l), tail_logp=np.concatenate(tail_l),
                     top1=np.concatenate(top1_l), nll=np.concatenate(nll_l), n_vocab=source.n_vocab)


def _kl(p_top: np.ndarray, p_tail: np.ndarray, q_top: np.ndarray, q_tail: np.ndarray) -> np.ndarray:
    """KL(p ‖ q) per row over the top tokens plus the tail as one outcome (all inputs are log-probs)."""
    p64, q64 = p_top.astype(np.float64), q_top.astype(np.float64)
    kl = (np.exp(p64) * (p64 - q64)).sum(axis=1)
    pt, qt = p_tail.astype(np.float64), q_tail.astype(np.float64)
    with np.errstate(invalid="ignore"):
        tail = np.where(np.isfinite(pt), np.exp(pt) * (pt - qt), 0.0)
    return kl + tail


def _mean_se(values: np.ndarray) -> tuple[float, float]:
    n = len(values)
    mean = float(values.mean())
    return mean, float(values.std(ddof=1) / math.sqrt(n)) if n > 1 else 0.0


def compare(source: LogitSource, reference: Reference, text: str, *, cancel: threading.Event | None = None,
            step: StepFn | None = None) -> Quality:
    """Measure `source` (a level) against `reference` on the same tokens."""
    if source.n_vocab != reference.n_vocab:
        raise EngineError(f"This level is not the same model as the reference ({reference.label}): their "
                          "vocabularies differ, so their answers cannot be compared.",
                          detail=f"n_vocab {source.n_vocab} != {reference.n_vocab}")
    if text_sha256(text) != reference.text_sha256:
        raise EngineError("The reference was measured on another evaluation text; measure it again.",
                          detail="text digest mismatch")
    if eval_chunks(source.tokenize(text), source.bos, *reference.chunks.shape).tolist() != reference.chunks.tolist():
        raise EngineError(f"This level tokenizes the evaluation text differently from the reference "
                          f"({reference.label}), so it is not the same model.", detail="token mismatch")
    per_chunk = reference.positions_per_chunk
    kl_l, same_l, nll_l = [], [], []
    for c, chunk in enumerate(reference.chunks):
        rows, targets = _scored(source.logits(chunk.tolist(), cancel), chunk, reference.first)
        base = c * per_chunk
        for b in range(0, len(rows), _BLOCK):
            sl = slice(base + b, base + min(b + _BLOCK, len(rows)))
            logq = _log_softmax(rows[b:b + _BLOCK])
            ids = reference.top_ids[sl]
            q_top = np.take_along_axis(logq, ids, axis=1).astype(np.float32)
            q_tail = _tail(logq, ids).astype(np.float32)
            kl_l.append(_kl(reference.top_logp[sl], reference.tail_logp[sl], q_top, q_tail))
            same_l.append(np.argmax(logq, axis=1) == reference.top1[sl])
            nll_l.append(-np.take_along_axis(logq, targets[b:b + _BLOCK, None], axis=1)[:, 0])
        if step is not None:
            step((c + 1) / len(reference.chunks))
    return summarize(reference, np.concatenate(kl_l), np.concatenate(same_l), np.concatenate(nll_l))


def summarize(reference: Reference, kl: np.ndarray, same: np.ndarray, nll: np.ndarray) -> Quality:
    """The figures of per-position KL values, top-1 matches and negative log-likelihoods."""
    n = len(kl)
    kl_mean, kl_se = _mean_se(kl)
    top1 = float(same.mean())
    log_ppl, log_ppl_se = _mean_se(nll)
    per = reference.positions_per_chunk
    chunks = range(0, n, per)
    return Quality(
        reference=reference.label, kl_mean=kl_mean, kl_se=kl_se, kl_median=float(np.median(kl)),
        kl_p99=float(np.percentile(kl, 99)), kl_max=float(kl.max()), top1=top1,
        top1_se=math.sqrt(top1 * (1 - top1) / (n - 1)) if n > 1 else 0.0,
        ppl=math.exp(log_ppl), ppl_se=math.exp(log_ppl) * log_ppl_se,
        reference_ppl=math.exp(float(reference.nll.astype(np.float64).mean())), tokens=n,
        chunk_kl=tuple(float(kl[i:i + per].mean()) for i in chunks),
        chunk_top1=tuple(float(same[i:i + per].mean()) for i in chunks))


def self_quality(reference: Reference) -> Quality:
    """The reference measured against itself, without running it again: KL 0, agreement 100 %."""
    n = len(reference.nll)
    return summarize(reference, np.zeros(n), np.ones(n, dtype=bool), reference.nll.astype(np.float64))
