"""Which llama.cpp build this process runs: the main one (AVX2) or the baseline one for older x86-64 CPUs.

x86-64 installers carry two builds of the same llama.cpp: the main one in `llama_cpp/lib` (AVX2, FMA, F16C,
BMI2; on Intel Macs SSE4.2 and BMI2) and a baseline one in `llama_cpp/lib-baseline` (SSE4.2 and AVX;
packaging/llama_baseline.py builds it).
llama-cpp-python opens its library once, at `import llama_cpp`, from $LLAMA_CPP_LIB_PATH when that is set, so
`apply()` must run before anything imports llama_cpp: the entry points call it first thing.

`choose()` is the decision alone, a pure function of the CPU's flags (as /proc/cpuinfo names them), the user's
$TINYCHAT_LLAMA_BUILD (`auto`, `avx2` or `baseline`) and whether a baseline build is present.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import platform
import sys
from dataclasses import dataclass
from pathlib import Path

from engine.hardware import cpuinfo_flags, sysctl, sysctl_cpu_flags, windows_cpu_flags

log = logging.getLogger(__name__)

MAIN, BASELINE, CUSTOM = "avx2", "baseline", "custom"
FORCE_ENV = "TINYCHAT_LLAMA_BUILD"
# Where a development checkout keeps its baseline build (the Makefile sets it for tests).
BASELINE_DIR_ENV = "TINYCHAT_LLAMA_BASELINE_DIR"
LIB_PATH_ENV = "LLAMA_CPP_LIB_PATH"  # read by llama-cpp-python at import
BASELINE_FOLDER = "lib-baseline"
# What the main build executes beyond the baseline (ggml's x86 defaults with GGML_NATIVE=OFF).
MAIN_NEEDS = ("avx2", "fma", "f16c", "bmi2")
_X86 = {"x86_64", "amd64", "i386", "i686", "x86"}


@dataclass(frozen=True)
class Choice:
    """A build and why it was chosen, in words for About and the log."""

    build: str  # MAIN, BASELINE or CUSTOM
    reason: str
    path: Path | None = None  # the folder llama-cpp-python loads from; None: its own lib/


def choose(flags: set[str] | None, forced: str = "auto", baseline_present: bool = True,
           x86: bool = True) -> Choice:
    """The build to run for a CPU with `flags` (None: unknown), the user's choice `forced`, and whether this
    installation has a baseline build. Unknown flags keep the main build: it runs on every x86-64 CPU since
    2015, and a wrong guess the other way would only be slower."""
    forced = (forced or "auto").strip().lower()
    if forced not in ("auto", MAIN, BASELINE):
        log.warning("%s=%s is not auto, avx2 or baseline: choosing automatically", FORCE_ENV, forced)
        forced = "auto"
    if forced == MAIN:
        return Choice(MAIN, f"chosen with {FORCE_ENV}=avx2")
    if forced == BASELINE:
        if baseline_present:
            return Choice(BASELINE, f"chosen with {FORCE_ENV}=baseline")
        return Choice(MAIN, f"{FORCE_ENV}=baseline, but this installation has no baseline build")
    if not x86:
        return Choice(MAIN, "the only build for this processor")
    if flags is None:
        return Choice(MAIN, "the processor's features are unknown")
    missing = [f.upper() for f in MAIN_NEEDS if f not in flags]
    if not missing:
        return Choice(MAIN, "this processor has AVX2")
    if baseline_present:
        return Choice(BASELINE, f"this processor lacks {', '.join(missing)}")
    return Choice(MAIN, f"this processor lacks {', '.join(missing)}, and this installation has no baseline build")


def bundled_baseline() -> Path | None:
    """The baseline build's folder: $TINYCHAT_LLAMA_BASELINE_DIR, else `lib-baseline` beside llama_cpp's own
    `lib` (installers), or None when neither holds a libllama."""
    spec = importlib.util.find_spec("llama_cpp")
    candidates = [os.environ.get(BASELINE_DIR_ENV, "")]
    if spec is not None and spec.submodule_search_locations:
        candidates += [str(Path(p) / BASELINE_FOLDER) for p in spec.submodule_search_locations]
    for folder in filter(None, candidates):
        if (Path(folder) / library_name()).exists():
            return Path(folder)
    return None


def library_name(system: str = sys.platform) -> str:
    """The file llama-cpp-python opens in a build's folder on `system` (a `sys.platform` value)."""
    return {"win32": "llama.dll", "darwin": "libllama.dylib"}.get(system, "libllama.so")


def cpu_features() -> set[str] | None:
    """The CPU's instruction-set flags in /proc/cpuinfo's names, on Linux, macOS and Windows; None if unknown."""
    if sys.platform == "darwin":
        keys = ("machdep.cpu.features", "machdep.cpu.leaf7_features")  # leaf 7 holds AVX2 and BMI2
        return sysctl_cpu_flags(" ".join(sysctl(key) or "" for key in keys))
    if sys.platform == "win32":
        import ctypes

        return windows_cpu_flags(ctypes.windll.kernel32.IsProcessorFeaturePresent)  # type: ignore[attr-defined]
    return cpuinfo_flags()


_applied: Choice | None = None


def apply() -> Choice:
    """Choose the build for this CPU and point llama-cpp-python at it; call before `import llama_cpp`.
    Idempotent. A $LLAMA_CPP_LIB_PATH already set wins: the baseline's folder, or the user's own build."""
    global _applied
    if _applied is not None:
        return _applied
    baseline = bundled_baseline()
    own = os.environ.get(LIB_PATH_ENV)
    if own and baseline is not None and Path(own).resolve() == baseline.resolve():
        # Named by the user, or inherited from the process that chose it (children check models).
        _applied = Choice(BASELINE, f"{LIB_PATH_ENV} names it", baseline)
    elif own:
        _applied = Choice(CUSTOM, f"{LIB_PATH_ENV} is set", Path(own))
    else:
        choice = choose(cpu_features(), os.environ.get(FORCE_ENV, "auto"), baseline is not None,
                        platform.machine().lower() in _X86)
        _applied = Choice(choice.build, choice.reason, baseline if choice.build == BASELINE else None)
        if "llama_cpp" in sys.modules and _applied.build == BASELINE:
            log.warning("llama_cpp was imported before the build was chosen: the main build stays in use")
            _applied = Choice(MAIN, "llama.cpp was loaded before the choice could be made")
        elif _applied.path is not None:
            os.environ[LIB_PATH_ENV] = str(_applied.path)  # children (model checks) load the same build
    log.info("llama.cpp build: %s (%s)", _applied.build, _applied.reason)
    return _applied


def instruction_sets(choice: Choice) -> str:
    """The instruction sets a build is made for, e.g. "SSE4.2, AVX" (from the baseline's build.json)."""
    if choice.build == MAIN:
        if platform.machine().lower() not in _X86:
            return platform.machine()
        # llama-cpp-python's own build turns AVX, AVX2, FMA and F16C off for Intel Macs, whatever CMAKE_ARGS say.
        return "SSE4.2, BMI2" if sys.platform == "darwin" else "AVX2, FMA, F16C"
    try:
        info = json.loads(((choice.path or Path()) / "build.json").read_text())
        return ", ".join(info["isa"])
    except (OSError, ValueError, KeyError, TypeError):
        return "unknown"


def describe(choice: Choice) -> str:
    """One line for About and diagnostics: which build, for which instructions, and why."""
    names = {MAIN: "main build", BASELINE: "baseline build for processors without AVX2 (slower)",
             CUSTOM: f"custom build from {choice.path}"}
    isa = "" if choice.build == CUSTOM else f" ({instruction_sets(choice)})"
    return f"{names[choice.build]}{isa}: {choice.reason}"


def status_note(choice: Choice) -> str:
    """The status bar's one line while the slower build runs; empty otherwise."""
    return "Slower engine for processors without AVX2" if choice.build == BASELINE else ""
