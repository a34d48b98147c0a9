"""Builds llama.cpp's baseline libraries: the engine for x86-64 CPUs without AVX2, shipped next to the main one.

    .venv/bin/python packaging/llama_baseline.py         # build (once) and print the folder holding the libraries

The main build (llama-cpp-python compiled with GGML_NATIVE=OFF) uses AVX2, FMA, F16C and BMI2 (on Intel Macs
SSE4.2 and BMI2 only), so it dies with "illegal instruction" on CPUs from before 2013 and on many
Atom/Celeron/Pentium chips. This one is compiled
from the very llama.cpp source that the installed llama-cpp-python vendors (its sdist, fetched with pip), with
those instruction sets switched off, so the same Python bindings drive it through LLAMA_CPP_LIB_PATH
(engine/cpu_build.py chooses between the two at start).

Only the shared libraries the bindings load are built (libllama and the ggml libraries it needs; no tools,
examples or server), for x86-64 Linux, Windows and macOS (TARGETS: what differs between them), and the result
is cached under ~/.cache/tinychat (or $XDG_CACHE_HOME/tinychat; %LOCALAPPDATA%\\tinychat\\Cache on Windows),
keyed by the llama-cpp-python version and the CMake flags: a fresh clone or CI job on the same machine, or with
that folder cached like pip's, builds nothing. A cold build takes several minutes of every core.
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
from dataclasses import dataclass
from pathlib import Path

DIST_NAME = "llama_cpp_python"
# SSE4.2 and AVX (2011's Sandy Bridge, AMD's Bulldozer): docs/benchmarks.md measures what AVX adds over
# SSE4.2 alone. Everything the main build adds on top (AVX2, FMA, F16C, BMI2) and AVX-512 is off.
ISA = ("SSE4.2", "AVX")
ARCH_FLAGS = ("-DGGML_NATIVE=OFF", "-DGGML_SSE42=ON", "-DGGML_AVX=ON", "-DGGML_AVX2=OFF", "-DGGML_FMA=OFF",
              "-DGGML_F16C=OFF", "-DGGML_BMI2=OFF", "-DGGML_AVX_VNNI=OFF", "-DGGML_AVX512=OFF")
BUILD_FLAGS = ("-DCMAKE_BUILD_TYPE=Release", "-DBUILD_SHARED_LIBS=ON", "-DLLAMA_BUILD_COMMON=OFF",
               "-DLLAMA_BUILD_TESTS=OFF", "-DLLAMA_BUILD_TOOLS=OFF", "-DLLAMA_BUILD_EXAMPLES=OFF",
               "-DLLAMA_BUILD_SERVER=OFF", "-DLLAMA_BUILD_APP=OFF", "-DLLAMA_CURL=OFF")


@dataclass(frozen=True)
class Target:
    """What differs between operating systems: the files, how they find each other, how they are stripped."""

    # What llama-cpp-python opens first, then the names the libraries ask each other for, each stored as a
    # plain file: no symlinks for installers to copy twice.
    libraries: tuple[str, ...]
    flags: tuple[str, ...]  # CMake flags added to BUILD_FLAGS
    strip: tuple[str, ...]  # the command that drops symbols only the linker needs; () keeps them


TARGETS = {
    # Found next to each other ($ORIGIN) wherever the folder is copied. As DT_RPATH, not DT_RUNPATH: the
    # frozen app runs with LD_LIBRARY_PATH at its bundle, which holds the main build's libggml* under the
    # same names, and only DT_RPATH is searched before LD_LIBRARY_PATH. Stripped like the wheel: 0.9 MB less.
    "linux-x86_64": Target(("libllama.so", "libggml.so.0", "libggml-base.so.0", "libggml-cpu.so.0"),
                           ("-DCMAKE_BUILD_WITH_INSTALL_RPATH=ON", "-DCMAKE_INSTALL_RPATH=$ORIGIN",
                            "-DCMAKE_SHARED_LINKER_FLAGS=-Wl,--disable-new-dtags"),
                           ("strip", "--strip-unneeded")),
    # Install names are @rpath/libggml.0.dylib, and @rpath is the library's own folder (@loader_path).
    # CPU only: ggml turns Metal and BLAS on by default on Apple systems, each one more library to carry.
    # `strip -x` keeps the global symbols the bindings look up.
    "darwin-x86_64": Target(("libllama.dylib", "libggml.0.dylib", "libggml-base.0.dylib", "libggml-cpu.0.dylib"),
                            ("-DCMAKE_BUILD_WITH_INSTALL_RPATH=ON", "-DCMAKE_INSTALL_RPATH=@loader_path",
                             "-DGGML_METAL=OFF", "-DGGML_BLAS=OFF"),
                            ("strip", "-x")),
    # DLLs have no rpath: llama-cpp-python puts the folder it loads from first on PATH, where Windows looks
    # for ggml*.dll. Every symbol exported, as llama-cpp-python's own build of llama.dll does. MSVC's
    # release DLLs carry no debug symbols to strip.
    "win32-AMD64": Target(("llama.dll", "ggml.dll", "ggml-base.dll", "ggml-cpu.dll"),
                          ("-DCMAKE_WINDOWS_EXPORT_ALL_SYMBOLS=ON",), ()),
}
INFO_FILE = "build.json"


def target_name(system: str = sys.platform, machine: str = platform.machine()) -> str | None:
    """This system's key in TARGETS ("linux-x86_64", "win32-AMD64"), or None where no baseline is built."""
    name = f"{'linux' if system.startswith('linux') else system}-{machine}"
    return name if name in TARGETS else None


def cache_root() -> Path:
    """Where builds and the source are kept between clones: %LOCALAPPDATA%\\tinychat\\Cache on Windows (where
    platformdirs puts caches), elsewhere $XDG_CACHE_HOME/tinychat, else ~/.cache/tinychat."""
    if sys.platform == "win32":
        return Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local") / "tinychat" / "Cache"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tinychat"


def build_key(version: str, name: str) -> str:
    """The cache key: llama-cpp-python's version, the target's machine and every flag that changes the result."""
    target = TARGETS[name]
    machine = name.partition("-")[2]
    flags = "\n".join((version, machine, *ARCH_FLAGS, *BUILD_FLAGS, *target.flags, " ".join(target.strip)))
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


def _compile(src: Path, build: Path, target: Target) -> Path:
    """Configure and build libllama with its ggml libraries; returns the folder they are in."""
    cache = build / "CMakeCache.txt"
    if cache.exists() and f"CMAKE_HOME_DIRECTORY:INTERNAL={src}\n" not in cache.read_text():
        shutil.rmtree(build)  # another version's build tree: CMake refuses to reuse it
    subprocess.run(["cmake", "-S", str(src), "-B", str(build), *BUILD_FLAGS, *target.flags, *ARCH_FLAGS],
                   check=True, stdout=subprocess.DEVNULL)
    jobs = os.environ.get("CMAKE_BUILD_PARALLEL_LEVEL") or str(os.cpu_count() or 2)
    # --config: Visual Studio's generator builds every configuration and ignores CMAKE_BUILD_TYPE.
    subprocess.run(["cmake", "--build", str(build), "--target", "llama", "--config", "Release", "-j", jobs],
                   check=True, stdout=subprocess.DEVNULL)
    # llama.cpp puts libraries in bin/, and multi-configuration generators in bin/Release/.
    return next((d for d in (build / "bin", build / "bin" / "Release") if (d / target.libraries[0]).exists()),
                build / "bin")


def ensure_built(version: str | None = None, root: Path | None = None) -> Path:
    """The folder with the baseline libraries for this llama-cpp-python, built now if it is not cached."""
    name = target_name()
    if name is None:
        raise SystemExit(f"No baseline llama.cpp build is defined for {sys.platform} on {platform.machine()}.")
    target = TARGETS[name]
    version = version or importlib.metadata.version(DIST_NAME)
    root = root or cache_root()
    out = root / "llama-baseline" / build_key(version, name)
    if (out / INFO_FILE).exists():
        return out
    src = source_dir(version, root)
    build = root / "build" / ISA[-1].lower().replace(".", "")  # one build tree per instruction set
    built = _compile(src, build, target)
    staging = out.with_name(out.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for library in target.libraries:
        shutil.copyfile(built / library, staging / library)  # follows the build's version symlinks
    if target.strip:
        subprocess.run([*target.strip, *(str(staging / library) for library in target.libraries)], check=True)
    info = {"llama_cpp_python": version, "isa": list(ISA), "flags": [*ARCH_FLAGS, *BUILD_FLAGS, *target.flags]}
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
