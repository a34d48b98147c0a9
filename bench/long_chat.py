"""A long conversation on the TinyLlama-shaped model: time to first token on every turn, prompt tokens
evaluated and reused, messages left out of the context.

One conversation of --turns different questions (bench.workloads.chat_turn), each answer at most
--max-tokens tokens and kept with its ids, as the app keeps them. Time to first token is the engine's
own (`GenerationStats.ttft_s`: from the request, fitting and prompt building included, to the first
answer token). Target (docs/benchmarks.md, "Long conversations"): turn 200 within 1.5x turn 5.

`--block-fraction` sets engine.context.BLOCK_FRACTION for the run: 0 makes every exchange a block of
its own, which is the one-exchange-at-a-time dropping TinyChat had before blocks.

    python -m bench.long_chat [--turns 200] [--max-tokens 24] [--n-ctx 2048] [--journal turns.jsonl]

Prints a Markdown section for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import threading
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import engine.context
from bench.workloads import chat_turn
from engine.context import fit_prompt
from engine.llamacpp_backend import LlamaCppEngine
from engine.types import GenerationParams, GenerationStats, LoadOptions, Message, ModelInfo
from tests.fixtures.gguf_model import build_cached


@dataclass(frozen=True)
class TurnStats:
    turn: int  # 1-based, as a person counts turns
    prompt: int
    reused: int
    forgotten: int
    ttft_s: float
    cpu_s: float  # CPU time of the process (every thread) from the request to the first chunk
    answer: int

    @property
    def evaluated(self) -> int:
        return self.prompt - self.reused


def ask(eng: LlamaCppEngine, request: list[Message], params: GenerationParams) -> tuple[str, GenerationStats, float]:
    """One answer: its text, its stats, and the process's CPU time from the request to the first chunk."""
    cpu0, cpu = time.process_time(), None
    chunks = []
    for chunk in eng.generate(request, params, threading.Event()):
        cpu = cpu if cpu is not None else time.process_time() - cpu0
        chunks.append(chunk)
    if chunks[-1].finish_reason not in ("stop", "length"):
        raise RuntimeError(f"the answer ended with {chunks[-1].finish_reason}: {chunks[-1].error}")
    return "".join(c.text for c in chunks), chunks[-1].stats, cpu or 0.0


@dataclass(frozen=True)
class Journal:
    """A run's turns so far, one JSON line each (stats, answer text and ids), written as each turn ends;
    a run given an existing journal goes on from its last turn."""

    path: Path | None

    def read(self) -> list[tuple[TurnStats, str, tuple[int, ...]]]:
        if self.path is None or not self.path.exists():
            return []
        lines = [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]
        return [(TurnStats(**{f.name: d[f.name] for f in fields(TurnStats)}), d["text"], tuple(d["ids"]))
                for d in lines]

    def add(self, row: TurnStats, text: str, ids: tuple[int, ...]) -> None:
        if self.path is not None:
            with self.path.open("a") as f:
                f.write(json.dumps({**asdict(row), "text": text, "ids": list(ids)}) + "\n")


def converse(eng: LlamaCppEngine, turns: int, max_tokens: int,
             journal: Journal) -> tuple[list[TurnStats], list[list[Message]]]:
    """Ask `turns` questions in one conversation, going on from the journal's last turn; the stats of
    each turn and each turn's request."""
    convo = [Message("system", "You are a helpful assistant.")]
    rows, requests = [], []
    for i, (row, text, ids) in enumerate(journal.read()):
        convo.append(Message("user", chat_turn(i)[0]))
        requests.append(list(convo))
        convo.append(Message("assistant", text, token_ids=ids))
        rows.append(row)
    if rows:  # the cache as the last turn left it: its prompt and answer, the last answer token not yet read
        fit, _ = fit_prompt(requests[-1], eng.count_tokens, eng._n_ctx, max_tokens)
        eng._llm.reset()
        eng._llm.eval([*eng.prompt_ids([requests[-1][i] for i in fit.kept]), *convo[-1].token_ids][:-1])
    for i in range(len(rows), turns):
        convo.append(Message("user", chat_turn(i)[0]))
        requests.append(list(convo))
        text, s, cpu = ask(eng, convo, GenerationParams(max_tokens=max_tokens, seed=i))
        convo.append(Message("assistant", text, token_ids=s.token_ids))
        rows.append(TurnStats(i + 1, s.prompt_tokens, s.reused_tokens, len(s.forgotten), s.ttft_s, cpu,
                              s.completion_tokens))
        journal.add(rows[-1], text, s.token_ids)
        print(f"turn {i + 1}: {rows[-1].evaluated} evaluated, {s.reused_tokens} reused, {s.ttft_s:.2f} s",
              file=sys.stderr)
    return rows, requests


def replay(eng: LlamaCppEngine, turns: dict[int, tuple[list[Message], int]],
           rounds: int) -> dict[int, list[tuple[float, float]]]:
    """Time to first token and CPU time of some turns again (turn: its request and the tokens it reused),
    each from a saved copy of the cache as it was before that turn, interleaved round by round so the
    noise of a busy machine falls on every turn alike."""
    llm = eng._llm
    states = {}
    for t, (request, reused) in turns.items():  # the conversation's last turn first: the cache holds it
        ask(eng, request, GenerationParams(max_tokens=1))
        llm.n_tokens = reused  # back to what the cache held when the turn was asked
        states[t] = llm.save_state()
    times: dict[int, list[tuple[float, float]]] = {t: [] for t in turns}
    for _ in range(rounds):
        for t, (request, reused) in turns.items():
            # The states saved by earlier replays would spare evaluation the turn did not have.
            assert eng.saved_states is not None
            eng.saved_states.clear()
            llm.load_state(states[t])
            _, s, cpu = ask(eng, request, GenerationParams(max_tokens=1))
            assert s.reused_tokens == reused, (t, s.reused_tokens, reused)
            times[t].append((s.ttft_s, cpu))
    return times


def replay_report(times: dict[int, list[tuple[float, float]]], rows: list[TurnStats], rounds: int) -> str:
    by_turn = {r.turn: r for r in rows}
    wall = {t: statistics.median(w for w, _ in v) for t, v in times.items()}
    cpu = {t: statistics.median(c for _, c in v) for t, v in times.items()}
    out = ["\n" f"The same turns again, each from a copy of the cache as it was before it, interleaved over "
               f"{rounds} rounds (medians; the ratio to turn 5 is the figure a busy machine disturbs least):", "",
           "| turn | context | evaluated | time to first token | ÷ turn 5 | CPU to it | ÷ turn 5 |",
           "|---|---|---|---|---|---|---|"]
    for t in sorted(times):
        r = by_turn[t]
        out.append(f"| {t} | {r.prompt} | {r.evaluated} | {wall[t]:.3f} s | {wall[t] / wall[5]:.2f}x | "
                   f"{cpu[t]:.3f} s | {cpu[t] / cpu[5]:.2f}x |")
    return "\n".join(out)


def report(rows: list[TurnStats], args: argparse.Namespace, elapsed: float) -> str:
    by_turn = {r.turn: r for r in rows}
    full = [r for r in rows if r.forgotten]
    drops = [r for prev, r in itertools.pairwise(rows) if r.forgotten != prev.forgotten]
    steady = [r for r in full if r not in drops]
    out = [f"`python -m bench.long_chat --turns {args.turns} --max-tokens {args.max_tokens} --n-ctx {args.n_ctx} "
           f"--block-fraction {args.block_fraction}`: {args.threads} threads, one run of {elapsed / 60:.1f} min.", ""]
    out += ["| turn | prompt tokens | evaluated | reused | messages left out | time to first token | CPU to it |",
            "|---|---|---|---|---|---|---|"]
    shown = sorted({1, 5, 10, *range(25, args.turns + 1, 25), args.turns, *(r.turn for r in drops[:3])})
    for t in shown:
        if t in by_turn:
            r = by_turn[t]
            mark = " (block left)" if r in drops else ""
            out.append(f"| {t}{mark} | {r.prompt} | {r.evaluated} | {r.reused} | {r.forgotten} | {r.ttft_s:.2f} s | "
                       f"{r.cpu_s:.2f} s |")
    out.append("")
    if 5 in by_turn and args.turns in by_turn:
        first, last = by_turn[5], by_turn[args.turns]
        out.append(f"Turn {args.turns} / turn 5 time to first token: {last.ttft_s:.2f} s / {first.ttft_s:.2f} s = "
                   f"**{last.ttft_s / first.ttft_s:.2f}x** (target <= 1.5x); CPU time {last.cpu_s:.2f} s / "
                   f"{first.cpu_s:.2f} s = {last.cpu_s / first.cpu_s:.2f}x.")
        around = [by_turn[t] for t in range(3, 8) if t in by_turn]
        end = [by_turn[t] for t in range(args.turns - 4, args.turns + 1) if t in by_turn]
        if len(around) == 5 and len(end) == 5:
            a, b = statistics.median(r.ttft_s for r in around), statistics.median(r.ttft_s for r in end)
            out.append(f"Medians of turns 3-7 and {args.turns - 4}-{args.turns} (less exposed to a busy machine): "
                       f"{b:.2f} s / {a:.2f} s = {b / a:.2f}x.")
    if full:
        out.append(f"Context full from turn {full[0].turn}. Of the {len(full)} turns after that, {len(drops)} left a "
                   f"block of old turns out and read the kept text again; the other {len(steady)} evaluated only "
                   "their new tokens.")
    if steady:
        out.append(f"Turns that reused the cache: median {statistics.median(r.ttft_s for r in steady):.2f} s to the "
                   f"first token, {statistics.median(r.evaluated for r in steady):.0f} tokens evaluated, "
                   f"{statistics.median(r.reused for r in steady):.0f} reused.")
    if drops:
        out.append(f"Turns that left a block out: median {statistics.median(r.ttft_s for r in drops):.2f} s, "
                   f"{statistics.median(r.evaluated for r in drops):.0f} tokens evaluated.")
    if full:
        out.append(f"Mean over every turn of the full context: {statistics.mean(r.ttft_s for r in full):.2f} s, "
                   f"{statistics.mean(r.evaluated for r in full):.0f} tokens evaluated per turn.")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--turns", type=int, default=200)
    ap.add_argument("--max-tokens", type=int, default=24, help="longest answer, in tokens")
    ap.add_argument("--n-ctx", type=int, default=2048)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--shape", default="tinyllama")
    ap.add_argument("--quant", default="Q4_K_M")
    ap.add_argument("--block-fraction", type=float, default=engine.context.BLOCK_FRACTION)
    ap.add_argument("--journal", type=Path, help="JSON lines file of the turns, written as they end; an existing "
                    "one is continued from its last turn (a stopped run loses nothing)")
    ap.add_argument("--rounds", type=int, default=5, help="rounds of the interleaved replay of turn 5, the last "
                    "turn that left a block out, and the last turn")
    ap.add_argument("--report", action="store_true", help="only print the report of the journal's turns")
    args = ap.parse_args()
    journal = Journal(args.journal)
    if args.report:
        rows = [row for row, _, _ in journal.read()]
        args.turns = rows[-1].turn
        print(report(rows, args, 0.0))
        return

    engine.context.BLOCK_FRACTION = args.block_fraction
    eng = LlamaCppEngine()
    eng.load(ModelInfo(path=build_cached(args.shape, args.quant)), LoadOptions(n_ctx=args.n_ctx,
                                                                               n_threads=args.threads))
    t0 = time.perf_counter()
    try:
        rows, requests = converse(eng, args.turns, args.max_tokens, journal)
        elapsed = time.perf_counter() - t0
        drops = [r.turn for prev, r in itertools.pairwise(rows) if r.forgotten != prev.forgotten]
        chosen = [args.turns, *drops[-1:], 5] if args.rounds and args.turns >= 5 else []
        times = replay(eng, {t: (requests[t - 1], rows[t - 1].reused) for t in chosen}, args.rounds)
    finally:
        eng.unload()
    print(report(rows, args, elapsed) + (replay_report(times, rows, args.rounds) if times else ""))


if __name__ == "__main__":
    main()
