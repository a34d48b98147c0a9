"""Facts about this machine that engines and diagnostics need."""

from __future__ import annotations

import os
import platform
from collections.abc import Callable
from pathlib import Path


def sysctl(name: str) -> str | None:
    """A macOS `sysctl` value, or None (elsewhere, or when it cannot be read)."""
    if platform.system() != "Darwin":
        return None
    import subprocess

    try:
        out = subprocess.run(["sysctl", "-n", name], capture_output=True, text=True, timeout=2)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def physical_cores() -> int:
    """Physical CPU cores: llama.cpp runs best with one thread per core, not per hyper-thread."""
    try:
        cores: set[tuple[str, str]] = set()
        phys = core = ""
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key, value = key.strip(), value.strip()
            if key == "physical id":
                phys = value
            elif key == "core id":
                core = value
                cores.add((phys, core))
        if cores:
            return len(cores)
    except OSError:
        pass
    perf_cores = sysctl("hw.perflevel0.physicalcpu")  # macOS: performance cores only (efficiency cores slow llama.cpp)
    if perf_cores is not None and perf_cores.isdigit():
        return int(perf_cores)
    # Unknown topology: assume hyper-threading on larger machines, where it is the norm.
    logical = os.cpu_count() or 1
    return max(logical // 2, 1) if logical > 4 else logical


def cpu_flags() -> tuple[str, ...]:
    """SIMD features the CPU reports (for diagnostics), e.g. ('avx2', 'fma', 'avx512f')."""
    interesting = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512_vnni", "neon", "asimd")
    flags = cpuinfo_flags()
    return tuple(f for f in interesting if f in flags) if flags else (platform.machine(),)


# llama.cpp's names for instruction sets, as the CPU reports them in /proc/cpuinfo.
_ISA_FLAGS = {"SSE3": "pni", "SSSE3": "ssse3", "AVX": "avx", "AVX2": "avx2", "F16C": "f16c", "FMA": "fma",
              "BMI2": "bmi2", "AVX512": "avx512f", "AVX512_VNNI": "avx512_vnni", "AVX_VNNI": "avx_vnni"}


def missing_instructions(system_info: str, cpuinfo_flags: set[str] | None) -> list[str]:
    """Instruction sets llama.cpp was compiled to use (`llama_print_system_info()`, e.g.
    "CPU : AVX = 1 | AVX2 = 1 | …") that this CPU lacks. Empty when the CPU's flags are unknown."""
    if not cpuinfo_flags:
        return []
    built = [name.strip() for name, _, value in (item.partition("=") for item in system_info.replace(":", "|")
                                                  .split("|")) if value.strip() == "1"]
    return [n for n in built if n in _ISA_FLAGS and _ISA_FLAGS[n] not in cpuinfo_flags]


def cpuinfo_flags() -> set[str] | None:
    """Every flag /proc/cpuinfo lists (Linux; "Features" on ARM), or None elsewhere."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return set(line.partition(":")[2].split())
    except OSError:
        pass
    return None


# macOS's `sysctl machdep.cpu.features` / `leaf7_features` names where they differ from /proc/cpuinfo's.
_SYSCTL_FLAGS = {"avx1.0": "avx", "sse3": "pni", "sse4.1": "sse4_1", "sse4.2": "sse4_2"}


def sysctl_cpu_flags(text: str) -> set[str] | None:
    """The flags in the output of `sysctl -n machdep.cpu.features machdep.cpu.leaf7_features` (Intel Macs:
    "… SSE4.2 … AVX1.0 RDRAND F16C" and "… BMI1 AVX2 SMEP BMI2 …"), in /proc/cpuinfo's names; None if empty."""
    return {_SYSCTL_FLAGS.get(word, word) for word in text.lower().split()} or None


# IsProcessorFeaturePresent's x86 constants (processthreadsapi.h), by /proc/cpuinfo's name.
_WINDOWS_FEATURES = {"pni": 13, "ssse3": 36, "sse4_1": 37, "sse4_2": 38, "avx": 39, "avx2": 40, "avx512f": 41}


def windows_cpu_flags(present: Callable[[int], int]) -> set[str] | None:
    """The flags Windows reports through `present` (kernel32's IsProcessorFeaturePresent), in /proc/cpuinfo's
    names; None when it does not know the SSE4.2-and-newer constants (older builds, e.g. 1809 and Server 2019)."""
    flags = {name for name, feature in _WINDOWS_FEATURES.items() if present(feature)}
    if "sse4_2" not in flags:
        # Either Windows predates these constants, or the CPU lacks SSE4.2 and neither build runs on it.
        return None
    if "avx2" in flags:
        # Windows has no constant for FMA, F16C or BMI2; every x86 processor shipped with AVX2 (Intel since
        # Haswell, AMD since Excavator) has all three. Only a virtual machine could hide one of them.
        flags |= {"fma", "f16c", "bmi2"}
    return flags


def cpu_name() -> str:
    """The processor's model name ("AMD EPYC 7B13", "Apple M2"), for labelling measurements."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Model", "Hardware") and value.strip():
                return value.strip()
    except OSError:
        pass
    return sysctl("machdep.cpu.brand_string") or platform.processor() or platform.machine() or "unknown processor"


def available_memory() -> int | None:
    """Bytes of memory a new program could use now without swapping (Linux MemAvailable), or None."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:  # macOS and other Unixes: free pages only (a lower bound: caches could be dropped too)
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None
