"""Builds TinyChat's installers for the OS it runs on, then smoke-tests what it built.

    .venv/bin/python packaging/release.py            # freeze, package, self-test the artefact
    .venv/bin/python packaging/release.py --no-smoke # skip the self-test (cross-checking elsewhere)

One script, one function per OS (like qutebrowser's build_release.py):
- Linux: dist/tinychat/ (onedir), tinychat-VERSION-linux-x86_64.tar.gz and tinychat_VERSION_amd64.deb
- macOS: dist/TinyChat.app, signed and notarised when credentials exist, in TinyChat-VERSION-arm64.dmg
- Windows: dist/tinychat/ and TinyChat-VERSION-setup.exe (Inno Setup)
The smoke test runs the built program's `--self-test --model <generated tiny model>`: the artefact, not the
source tree, must load a model and answer.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGING = ROOT / "packaging"
SPEC = PACKAGING / "tinychat.spec"
FINGERPRINT_FILE = ".build-inputs.sha256"


def run(cmd: list[str], **kwargs: object) -> None:
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, **kwargs)  # type: ignore[call-overload]


def baseline_llama() -> Path | None:
    """The llama.cpp build for x86-64 CPUs without AVX2 that the Linux, Windows and Intel-macOS installers carry
    beside the main one, built once and cached (packaging/llama_baseline.py); None where no such build is made."""
    sys.path.insert(0, str(PACKAGING))
    from llama_baseline import ensure_built, target_name

    return ensure_built() if target_name() else None


def freeze(dist: Path, work: Path) -> Path:
    """PyInstaller onedir build; returns dist/tinychat (the folder every OS packages)."""
    baseline = baseline_llama()
    env = {**os.environ, **({"TINYCHAT_LLAMA_BASELINE_DIR": str(baseline)} if baseline else {})}
    run([sys.executable, "-m", "PyInstaller", "--noconfirm", "--log-level", "WARN",
         "--distpath", str(dist), "--workpath", str(work), str(SPEC)], env=env)
    return dist / "tinychat"


def smoke_test(program: Path, model: Path | None, llama_build: str = "auto") -> str:
    """The built app's own self-test on the llama.cpp build `llama_build` chooses (auto, avx2 or baseline), with
    no network when `unshare` allows it (Linux, root); returns its report."""
    cmd = [str(program), "--self-test"] + (["--model", str(model)] if model else [])
    if sys.platform.startswith("linux") and shutil.which("unshare") and os.geteuid() == 0:
        cmd = ["unshare", "-n", *cmd]
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "TINYCHAT_LLAMA_BUILD": llama_build}
    env.pop("TINYCHAT_HOME", None)
    env.pop("LLAMA_CPP_LIB_PATH", None)
    print("+", f"TINYCHAT_LLAMA_BUILD={llama_build}", " ".join(cmd), flush=True)
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    print(proc.stdout + proc.stderr, end="", flush=True)
    if proc.returncode != 0:
        raise SystemExit(f"The self-test of {program} failed (exit status {proc.returncode}).")
    return proc.stdout


def check_baseline_ran(report: str) -> None:
    """Stop unless the self-test `report` ran the baseline build's CPU code: release runners have AVX2, so the
    main build's ggml libraries, loaded by mistake under the same names, would report AVX2, FMA or F16C."""
    # "ok    engine libraries: llama.cpp 0.3.36 (baseline build: AVX, SSE3, …)": what the loaded CPU code uses.
    found = re.search(r"engine libraries: .*?\((\w+) build: ([^)]*)\)", report)
    used = set(found.group(2).split(", ")) if found else set()
    if not found or found.group(1) != "baseline" or used & {"AVX2", "FMA", "F16C"}:
        raise SystemExit(f"The forced baseline build did not run its own libraries: {found and found.group(0)}")


def default_smoke_model() -> Path:
    """A generated tiny GGUF model (random weights, real llama architecture), built once and cached."""
    sys.path.insert(0, str(ROOT))
    from tests.fixtures.gguf_model import build_cached

    return build_cached("tiny", scripted=True)


def build_linux(version: str, dist: Path, work: Path) -> list[Path]:
    onedir = freeze(dist, work)
    run([sys.executable, str(PACKAGING / "linux" / "build_packages.py"), str(onedir), "--version", version,
         "--out", str(dist)])
    return [onedir, dist / f"tinychat-{version}-linux-x86_64.tar.gz", dist / f"tinychat_{version}_amd64.deb"]


def build_macos(version: str, dist: Path, work: Path) -> list[Path]:
    freeze(dist, work)
    app = dist / "TinyChat.app"
    dmg = dist / f"TinyChat-{version}-{platform.machine()}.dmg"  # arm64 or x86_64
    # Signs (when MACOS_SIGN_IDENTITY is set), builds the dmg, notarises (when Apple credentials are set).
    run(["bash", str(PACKAGING / "macos" / "package.sh"), str(app), version, str(dmg)])
    return [app, dmg]


def build_windows(version: str, dist: Path, work: Path) -> list[Path]:
    onedir = freeze(dist, work)
    iscc = shutil.which("iscc") or r"C:\Program Files (x86)\Inno Setup 6\ISCC.exe"
    run([iscc, f"/DAppVersion={version}", f"/DSourceDir={onedir}", f"/DOutputDir={dist}",
         f"/DRepoDir={ROOT}", str(PACKAGING / "windows" / "tinychat.iss")])
    return [onedir, dist / f"TinyChat-{version}-setup.exe"]


def inputs_fingerprint() -> str:
    """A hash of everything a build is made from: TinyChat's code and assets, the packaging files, and the
    installed version of every Python package. Equal fingerprints give equivalent builds."""
    h = hashlib.sha256()
    for folder in ("app", "engine", "packaging", "assets"):
        for path in sorted((ROOT / folder).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                h.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    h.update((ROOT / "pyproject.toml").read_bytes())
    versions = sorted(f"{d.metadata['Name']}=={d.version}" for d in importlib.metadata.distributions())
    h.update("\n".join(versions).encode())
    baseline = baseline_llama()  # its folder's name is its cache key: llama.cpp version and flags
    h.update(baseline.name.encode() if baseline else b"")
    return h.hexdigest()


def program_in(dist: Path) -> Path:
    """The executable the smoke test runs on this OS."""
    if sys.platform == "darwin":
        return dist / "TinyChat.app" / "Contents" / "MacOS" / "tinychat"
    if sys.platform == "win32":
        return dist / "tinychat" / "tinychat-console.exe"  # the windowed .exe has no stdout
    return dist / "tinychat" / "tinychat"


def _size(path: Path) -> int:
    return path.stat().st_size if path.is_file() else sum(p.lstat().st_size for p in path.rglob("*"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dist", type=Path, default=ROOT / "dist", help="where artefacts go (default: dist/)")
    ap.add_argument("--work", type=Path, default=ROOT / "build" / "pyinstaller", help="PyInstaller's work folder")
    ap.add_argument("--model", type=Path, help="model for the smoke test (default: a generated tiny GGUF)")
    ap.add_argument("--no-smoke", action="store_true", help="do not run the built app's self-test")
    ap.add_argument("--reuse", action="store_true",
                    help="do nothing if dist/ already holds a build of exactly these sources and packages")
    args = ap.parse_args(argv)

    version = importlib.metadata.version("tinychat")
    builders = {"linux": build_linux, "darwin": build_macos, "win32": build_windows}
    key = "linux" if sys.platform.startswith("linux") else sys.platform
    if key not in builders:
        print(f"No installer is defined for {sys.platform}.", file=sys.stderr)
        return 2
    start = time.perf_counter()
    args.dist.mkdir(parents=True, exist_ok=True)
    stamp = args.dist / FINGERPRINT_FILE
    fingerprint = inputs_fingerprint()
    if args.reuse and stamp.exists() and stamp.read_text() == fingerprint:
        print(f"dist/ already holds TinyChat {version} built from these sources: nothing to do.")
        return 0
    stamp.unlink(missing_ok=True)
    model = None if args.no_smoke else (args.model or default_smoke_model())
    artefacts = builders[key](version, args.dist, args.work)
    if not args.no_smoke:
        smoke_test(program_in(args.dist), model)
        if baseline_llama() is not None:  # the second build must answer too, from its own libraries
            check_baseline_ran(smoke_test(program_in(args.dist), model, "baseline"))
    stamp.write_text(fingerprint)
    print(f"\nTinyChat {version} for {key}/{platform.machine()} in {time.perf_counter() - start:.0f} s:")
    for path in artefacts:
        print(f"  {path}  {_size(path) / 2**20:.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
