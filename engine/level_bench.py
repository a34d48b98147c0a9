"""Measuring one quantization level on this computer: speed, memory and (against a reference level)
answer quality. `measure_level` is the one call; the GUI runs it on a background thread, the CLIs
in the foreground. Progress goes to a callback, and a `threading.Event` cancels between slices of
work (MeasurementCancelled).

Speed is measured through the chat engine itself (engine.select.create_engine), so the figures are
what a conversation gets: load time, then `TURNS` typical first turns (a system prompt and a
question of about 200 tokens, `GEN_TOKENS` answer tokens each), giving prompt tokens/s, generation
tokens/s and time to first token, with their range over the turns. Peak resident memory is the
process's high-water mark over loading and answering, reset first where the OS allows it (Linux),
and the memory the level adds is that peak minus what the process held before loading.
Quality is engine/level_quality.py, on the text shipped in `assets/level_eval.txt`.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from engine.hardware import cpu_name, physical_cores
from engine.level_logits import MeasurementCancelled, check_cancel, open_logits
from engine.level_quality import (
    DEFAULT_WINDOWS,
    Quality,
    Reference,
    Windows,
    build_reference,
    compare,
    self_quality,
    text_sha256,
)
from engine.types import EngineError, EngineName, GenerationParams, LoadOptions, Message, ModelFileError, ModelInfo

log = logging.getLogger(__name__)

__all__ = ["LevelFigures", "MeasurementCancelled", "Speed", "measure_level", "prepare_reference"]

EVAL_TEXT = "level_eval.txt"
TURNS = 2
GEN_TOKENS = 48
SYSTEM = "You are a helpful assistant."
QUESTIONS = (
    "I am planning a small vegetable garden behind my house. The plot is about four metres by three, it "
    "gets sun in the morning and shade after two o'clock, and the soil is heavy clay that stays wet in "
    "spring. I would like to grow tomatoes, beans, lettuce and some herbs, and I have a compost heap that "
    "is about a year old. I can spend a weekend preparing the ground and an hour a week after that. Please "
    "write a detailed plan: how to improve the soil, where to put each plant, when to sow or plant each one "
    "in a temperate climate, how often to water, and which mistakes beginners usually make with clay soil.",
    "Explain to a new programmer, step by step and with a short example, how a hash table works: what the "
    "hash function does, how collisions are handled with chaining and with open addressing, why the table "
    "is resized when it gets too full, and what that means for the average and worst-case cost of looking "
    "up a key. Then compare it with keeping the keys in a sorted list and using binary search, and say "
    "when each of the two is the better choice in practice, for example for a phone book that rarely "
    "changes and for a cache of web pages that changes every second.",
)

ProgressFn = Callable[[str, float], None]  # (what is being done, fraction of this level done)


@dataclass(frozen=True)
class Speed:
    """Speed and memory of one level. `*_range` are (min, max) over the turns."""

    load_s: float
    prompt_tps: float
    prompt_tps_range: tuple[float, float]
    gen_tps: float
    gen_tps_range: tuple[float, float]
    ttft_s: float
    ttft_range: tuple[float, float]
    prompt_tokens: int
    gen_tokens: int
    peak_rss_bytes: int | None  # the process's peak while loading and answering
    added_bytes: int | None  # that peak minus what the process held before loading


@dataclass(frozen=True)
class LevelFigures:
    """Everything measured for one level, and the conditions it was measured under."""

    label: str
    level: str
    engine: EngineName
    path: str
    engine_build: str
    cpu: str
    threads: int
    speed: Speed
    quality: Quality | None
    took_s: float  # wall time of the whole measurement
    cpu_s: float  # process CPU time it used (wall time on an idle machine ≈ cpu_s / threads)
    measured_at: str


def eval_text_path() -> Path:
    """The shipped evaluation text: `assets/` next to the packages, or in a frozen build's data folder."""
    root = Path(getattr(sys, "_MEIPASS", Path(__file__).resolve().parents[1]))
    return root / "assets" / EVAL_TEXT


def engine_build(engine: EngineName) -> str:
    """The inference library versions a figure was measured with."""
    from importlib.metadata import PackageNotFoundError, version

    names = ("mlx", "mlx-lm") if engine == "mlx" else ("llama-cpp-python",)
    found = []
    for name in names:
        try:
            found.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            found.append(f"{name} ?")
    return ", ".join(found)


class _PeakMemory:
    """Resident memory before a piece of work and the high-water mark during it."""

    def __init__(self, engine: EngineName) -> None:
        self.engine = engine
        self._reset = False
        self.before = _status_kb("VmRSS")
        try:
            Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS (Linux ≥ 4.0)
            self._reset = True
        except OSError:
            if engine == "mlx":
                import mlx.core as mx

                mx.reset_peak_memory()

    def peak(self) -> tuple[int | None, int | None]:
        """(peak bytes, bytes over `before`); None where this OS gives no trustworthy figure."""
        if self._reset and self.before is not None:
            hwm = _status_kb("VmHWM")
            return (hwm * 1024, (hwm - self.before) * 1024) if hwm is not None else (None, None)
        if self.engine == "mlx":  # macOS: MLX's own allocator peak is the model's memory
            import mlx.core as mx

            added = int(mx.get_peak_memory())
            return None, added
        try:
            import resource

            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # bytes on macOS
            return int(peak), None  # the process's lifetime peak: the level's share is unknown
        except ImportError:
            return None, None


def _status_kb(key: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def _spread(values: list[float]) -> tuple[float, tuple[float, float]]:
    return sum(values) / len(values), (min(values), max(values))


def measure_speed(model: ModelInfo, n_threads: int, *, cancel: threading.Event | None = None,
                  step: Callable[[float], None] | None = None) -> Speed:
    """Load `model` in the chat engine and answer `TURNS` typical first turns."""
    from engine.select import create_engine

    memory = _PeakMemory(model.engine)
    engine = create_engine(model.engine)
    t0 = time.perf_counter()
    engine.load(model, LoadOptions(n_threads=n_threads))
    load_s = time.perf_counter() - t0
    prompt, gen, ttft, n_prompt, n_gen = [], [], [], 0, 0
    try:
        for i in range(TURNS):
            check_cancel(cancel)
            if step is not None:
                step((i + 0.5) / (TURNS + 0.5))
            messages = [Message("system", SYSTEM), Message("user", QUESTIONS[i % len(QUESTIONS)])]
            params = GenerationParams(max_tokens=GEN_TOKENS, seed=i)
            last = list(engine.generate(messages, params, cancel or threading.Event()))[-1]
            check_cancel(cancel)
            stats = last.stats
            if last.finish_reason == "error" or stats is None:
                raise EngineError(last.error or "The model could not answer; measure it again.")
            prompt.append(stats.prompt_tokens_per_s)
            ttft.append(stats.ttft_s)
            if stats.completion_tokens > 1:
                gen.append(stats.tokens_per_s)
            n_prompt, n_gen = stats.prompt_tokens, max(n_gen, stats.completion_tokens)
        peak, added = memory.peak()
    finally:
        engine.unload()
    if added is not None:
        # The weights are read into memory (no mmap), so a level needs at least its files; the
        # high-water mark alone can say less when the process reuses memory it freed earlier.
        path = Path(model.path)
        files = [f for f in path.rglob("*") if f.is_file()] if path.is_dir() else [path]
        added = max(added, sum(f.stat().st_size for f in files))
    p, p_range = _spread(prompt)
    g, g_range = _spread(gen or [0.0])
    t, t_range = _spread(ttft)
    return Speed(load_s=load_s, prompt_tps=p, prompt_tps_range=p_range, gen_tps=g, gen_tps_range=g_range,
                 ttft_s=t, ttft_range=t_range, prompt_tokens=n_prompt, gen_tokens=n_gen, peak_rss_bytes=peak,
                 added_bytes=added)


def prepare_reference(model: ModelInfo, text: str, *, identity: str, n_threads: int | None = None,
                      cache: Path | None = None, cancel: threading.Event | None = None,
                      step: Callable[[float], None] | None = None, windows: Windows = DEFAULT_WINDOWS) -> Reference:
    """The reference level's distributions: read from `cache` when they were measured on this file and
    text, with these windows, before; else measured now (and saved to `cache`)."""
    if cache is not None and cache.is_file():
        try:
            saved = Reference.load(cache)
            if (saved.identity, saved.text_sha256, saved.windows) == (identity, text_sha256(text), windows):
                return saved
        except EngineError as e:  # a damaged cache file is measured again, never an error
            log.warning("ignoring saved reference %s: %s", cache, e.detail)
    source = open_logits(model.path, model.engine, windows.length, n_threads or physical_cores())
    try:
        ref = build_reference(source, text, label=model.label or Path(model.path).name, identity=identity,
                              windows=windows, cancel=cancel, step=step)
    finally:
        source.close()
    if cache is not None:
        ref.save(cache)
    return ref


def measure_level(model: ModelInfo, *, identity: str, text: str, reference: Reference | None = None,
                  n_threads: int | None = None, cancel: threading.Event | None = None,
                  progress: ProgressFn | None = None) -> LevelFigures:
    """Speed, memory and (with a reference) quality of the level at `model.path`.

    `identity` names the file (its sha256, or what `file_identity` gives): a level whose identity is
    the reference's is that reference, and its quality is the reference's own (KL 0) without a second
    run. Raises MeasurementCancelled, or EngineError with a sentence when the model cannot be run."""
    threads = n_threads or physical_cores()
    t0, c0 = time.perf_counter(), time.process_time()
    label = model.label or Path(model.path).name

    def report(stage: str, lo: float, hi: float) -> Callable[[float], None]:
        def on_step(fraction: float) -> None:
            if progress is not None:
                progress(stage, lo + (hi - lo) * fraction)
        return on_step

    report("speed", 0.0, 0.3)(0.0)
    speed = measure_speed(model, threads, cancel=cancel, step=report("speed", 0.0, 0.3))
    quality = None
    if reference is not None and reference.identity == identity:
        quality = self_quality(reference)
    elif reference is not None:
        source = open_logits(model.path, model.engine, reference.windows.length, threads)
        try:
            quality = compare(source, reference, text, cancel=cancel, step=report("quality", 0.3, 1.0))
        finally:
            source.close()
    report("done", 1.0, 1.0)(1.0)
    return LevelFigures(label=label, level=model.quant, engine=model.engine, path=str(model.path),
                        engine_build=engine_build(model.engine), cpu=cpu_name(), threads=threads, speed=speed,
                        quality=quality, took_s=time.perf_counter() - t0, cpu_s=time.process_time() - c0,
                        measured_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"))


def file_identity(path: Path) -> str:
    """Names a model file or folder by size and modification time, cheaply (no hashing)."""
    path = Path(path)
    if not path.exists():
        raise ModelFileError(f"The model {path.name} was not found. Check the path and try again.", str(path))
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    stats = [(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in files]
    return "file:" + ";".join(f"{n}:{s}:{m}" for n, s, m in stats)


def read_eval_text(path: Path | None = None) -> str:
    """The evaluation text (the shipped one unless `path` is given)."""
    path = path or eval_text_path()
    try:
        return path.read_text(encoding="utf-8")
    except OSError as e:
        raise EngineError(f"The evaluation text {path} could not be read; reinstall TinyChat or pass "
                          "another text file.", detail=repr(e)) from e
