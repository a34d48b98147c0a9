"""Facts about this machine that engines and diagnostics need."""

from __future__ import annotations

import os
import platform
from pathlib import Path


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
    if platform.system() == "Darwin":
        try:
            import subprocess

            out = subprocess.run(["sysctl", "-n", "hw.perflevel0.physicalcpu"], capture_output=True, text=True,
                                 timeout=2)
            if out.returncode == 0 and out.stdout.strip().isdigit():
                return int(out.stdout.strip())  # performance cores only: efficiency cores slow llama.cpp
        except (OSError, subprocess.SubprocessError):
            pass
    return max((os.cpu_count() or 2) // 2, 1) if (os.cpu_count() or 1) > 4 else (os.cpu_count() or 1)


def cpu_flags() -> tuple[str, ...]:
    """SIMD features the CPU reports (for diagnostics), e.g. ('avx2', 'fma', 'avx512f')."""
    interesting = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512_vnni", "neon", "asimd")
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                flags = set(line.partition(":")[2].split())
                return tuple(f for f in interesting if f in flags)
    except OSError:
        pass
    return (platform.machine(),)
