"""Measured figures of a level as text for people: `tinychat-engine bench` and `tinychat models bench`."""

from __future__ import annotations

from collections.abc import Sequence

from engine.level_bench import LevelFigures
from engine.progress import human


def memory_text(f: LevelFigures) -> str:
    """What the level takes in memory, e.g. "+781 MB (peak 930 MB)"."""
    s = f.speed
    if s.added_bytes is not None and s.peak_rss_bytes is not None:
        return f"+{human(s.added_bytes)} (peak {human(s.peak_rss_bytes)})"
    if s.added_bytes is not None:
        return f"+{human(s.added_bytes)}"
    return f"peak {human(s.peak_rss_bytes)}" if s.peak_rss_bytes is not None else "not measured"


def describe(f: LevelFigures) -> str:
    """Every figure of one level, a few lines long, with the spread of each."""
    s, q = f.speed, f.quality
    lines = [
        f"{f.label} on {f.engine} ({f.engine_build}), {f.threads} threads, {f.cpu}",
        f"  speed: load {s.load_s:.2f} s · prompt {s.prompt_tps:.0f} tokens/s "
        f"({s.prompt_tps_range[0]:.0f}–{s.prompt_tps_range[1]:.0f}) · generation {s.gen_tps:.1f} tokens/s "
        f"({s.gen_tps_range[0]:.1f}–{s.gen_tps_range[1]:.1f}) · first token {s.ttft_s:.2f} s "
        f"({s.ttft_range[0]:.2f}–{s.ttft_range[1]:.2f}) for a {s.prompt_tokens}-token turn",
        f"  memory: {memory_text(f)}",
    ]
    if q is not None:
        lines.append(
            f"  quality against {q.reference}: same next token {100 * q.top1:.1f} % ± {100 * q.top1_se:.1f} · "
            f"KL divergence {q.kl_mean:.4f} ± {q.kl_se:.4f} (median {q.kl_median:.4f}, 99th percentile "
            f"{q.kl_p99:.3f}) · perplexity {q.ppl:.2f} ± {q.ppl_se:.2f} (reference {q.reference_ppl:.2f}) · "
            f"{q.tokens} tokens; by window: KL {', '.join(f'{v:.4f}' for v in q.chunk_kl)}, same token "
            f"{', '.join(f'{100 * v:.1f} %' for v in q.chunk_top1)}")
    lines.append(f"  measured in {f.took_s:.1f} s ({f.cpu_s:.1f} s of CPU)")
    return "\n".join(lines)


def table(rows: Sequence[tuple[str, LevelFigures | None]]) -> str:
    """One line per level: (level name, its figures or None when not measured)."""
    head = f"{'level':<10} {'gen tok/s':>9} {'prompt tok/s':>12} {'1st token':>9} {'memory':>10} " \
           f"{'same token':>10} {'KL':>8} {'perplexity':>10}"
    out = [head]
    for level, f in rows:
        if f is None:
            out.append(f"{level:<10} {'not measured':>9}")
            continue
        s, q = f.speed, f.quality
        mem = human(s.added_bytes) if s.added_bytes is not None else "?"
        quality = (f"{100 * q.top1:>9.1f}% {q.kl_mean:>8.4f} {q.ppl:>10.2f}" if q is not None
                   else f"{'—':>10} {'—':>8} {'—':>10}")
        out.append(f"{level:<10} {s.gen_tps:>9.1f} {s.prompt_tps:>12.0f} {s.ttft_s:>8.2f}s {mem:>10} {quality}")
    return "\n".join(out)
