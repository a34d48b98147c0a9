"""Builds llama.cpp's baseline libraries: the engine for x86-64 CPUs without AVX2, shipped next to the main one.

    .venv/bin/python packaging/llama_baseline.py         # build (once) and print the folder holding the libraries

The main build (llama-cpp-python compiled with GGML_NATIVE=OFF) uses AVX2, FMA, F16C and BMI2, so it dies with
"illegal instruction" on CPUs from before 2013 and on many Atom/Celeron/Pentium chips. This one is compiled
from the very llama.cpp source that the installed llama-cpp-python vendors (its sdist, fetched with pip), with
those instruction sets switched off, so the same Python bindings drive it through LLAMA_CPP_LIB_PATH
(engine/cpu_build.py chooses between the two at start).

Only the shared libraries the bindings load are built (libllama and the ggml libraries it needs; no tools,
examples or server), and the result is cached under ~/.cache/tinychat (or $XDG_CACHE_HOME/tinychat), keyed by
the llama-cpp-python version and the CMake flags: a fresh clone or CI job on the same machine, or with that
folder cached like pip's, builds nothing. A cold build takes several minutes of every core.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import json
import os
import platform
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

DIST_NAME = "llama_cpp_python"
# SSE4.2 and AVX (2011's Sandy Bridge, AMD's Bulldozer): docs/benchmarks.md measures what AVX adds over
# SSE4.2 alone. Everything the main build adds on top (AVX2, FMA, F16C, BMI2) and AVX-512 is off.
ISA = ("SSE4.2", "AVX")
ARCH_FLAGS = ("-DGGML_NATIVE=OFF", "-DGGML_SSE42=ON", "-DGGML_AVX=ON", "-DGGML_AVX2=OFF", "-DGGML_FMA=OFF",
              "-DGGML_F16C=OFF", "-DGGML_BMI2=OFF", "-DGGML_AVX_VNNI=OFF", "-DGGML_AVX512=OFF")
# The libraries only, found next to each other ($ORIGIN) wherever the folder is copied. As DT_RPATH, not
# DT_RUNPATH: the frozen app runs with LD_LIBRARY_PATH at its bundle, which holds the main build's libggml*
# under the same names, and only DT_RPATH is searched before LD_LIBRARY_PATH.
BUILD_FLAGS = ("-DCMAKE_BUILD_TYPE=Release", "-DBUILD_SHARED_LIBS=ON", "-DLLAMA_BUILD_COMMON=OFF",
               "-DLLAMA_BUILD_TESTS=OFF", "-DLLAMA_BUILD_TOOLS=OFF", "-DLLAMA_BUILD_EXAMPLES=OFF",
               "-DLLAMA_BUILD_SERVER=OFF", "-DLLAMA_BUILD_APP=OFF", "-DLLAMA_CURL=OFF",
               "-DCMAKE_BUILD_WITH_INSTALL_RPATH=ON", "-DCMAKE_INSTALL_RPATH=$ORIGIN",
               "-DCMAKE_SHARED_LINKER_FLAGS=-Wl,--disable-new-dtags")
# What llama-cpp-python opens (libllama.so) and the sonames it needs, each stored as a plain file: no
# symlinks for installers to copy twice.
LIBRARIES = ("libllama.so", "libggml.so.0", "libggml-base.so.0", "libggml-cpu.so.0")
INFO_FILE = "build.json"


def cache_root() -> Path:
    """Where builds and the source are kept between clones: $XDG_CACHE_HOME/tinychat, else ~/.cache/tinychat."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tinychat"


def build_key(version: str) -> str:
    """The cache key: llama-cpp-python's version and every flag that changes the result."""
    flags = "\n".join((version, platform.machine(), *ARCH_FLAGS, *BUILD_FLAGS, "strip --strip-unneeded"))
    return f"{version}-{hashlib.sha256(flags.encode()).hexdigest()[:12]}"


def source_dir(version: str, root: Path) -> Path:
    """The llama.cpp source vendored by this llama-cpp-python version (its sdist, downloaded once with pip)."""
    unpacked = root / "src" / f"{DIST_NAME}-{version}"
    llama = unpacked / "vendor" / "llama.cpp"
    if (llama / "CMakeLists.txt").exists():
        return llama
    archive = root / "src" / f"{DIST_NAME}-{version}.tar.gz"
    if not archive.exists():
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
                        f"{DIST_NAME}=={version}", "--dest", str(archive.parent)], check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(archive.parent, filter="tar")
    return llama


def _compile(src: Path, build: Path) -> None:
    cache = build / "CMakeCache.txt"
    if cache.exists() and f"CMAKE_HOME_DIRECTORY:INTERNAL={src}\n" not in cache.read_text():
        shutil.rmtree(build)  # another version's build tree: CMake refuses to reuse it
    subprocess.run(["cmake", "-S", str(src), "-B", str(build), *BUILD_FLAGS, *ARCH_FLAGS], check=True,
                   stdout=subprocess.DEVNULL)
    jobs = os.environ.get("CMAKE_BUILD_PARALLEL_LEVEL") or str(os.cpu_count() or 2)
    subprocess.run(["cmake", "--build", str(build), "--target", "llama", "-j", jobs], check=True,
                   stdout=subprocess.DEVNULL)


def ensure_built(version: str | None = None, root: Path | None = None) -> Path:
    """The folder with the baseline libraries for this llama-cpp-python, built now if it is not cached."""
    version = version or importlib.metadata.version(DIST_NAME)
    root = root or cache_root()
    out = root / "llama-baseline" / build_key(version)
    if (out / INFO_FILE).exists():
        return out
    src = source_dir(version, root)
    build = root / "build" / ISA[-1].lower().replace(".", "")  # one build tree per instruction set
    _compile(src, build)
    staging = out.with_name(out.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for name in LIBRARIES:
        shutil.copyfile(build / "bin" / name, staging / name)  # follows the build's version symlinks
    # Symbols only the linker needs stay, as in llama-cpp-python's own wheel: 0.9 MB less per copy.
    subprocess.run(["strip", "--strip-unneeded", *(str(staging / name) for name in LIBRARIES)], check=True)
    info = {"llama_cpp_python": version, "isa": list(ISA), "flags": [*ARCH_FLAGS, *BUILD_FLAGS]}
    (staging / INFO_FILE).write_text(json.dumps(info, indent=1) + "\n")
    shutil.rmtree(out, ignore_errors=True)
    staging.rename(out)  # complete or absent: an interrupted build never looks cached
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--version", help="llama-cpp-python version (default: the installed one)")
    args = ap.parse_args(argv)
    print(ensure_built(args.version))
    return 0


if __name__ == "__main__":
    sys.exit(main())
