"""Turns the PyInstaller onedir folder into the Linux downloads: a `.tar.gz` and a `.deb`.

    python packaging/linux/build_packages.py dist/tinychat --version 0.1.0 --out dist

The .deb installs the folder as /opt/tinychat, a `tinychat` command in /usr/bin, a desktop entry and an
icon, and declares the system libraries the bundle does not carry (OpenGL/EGL, xcb and Qt's xcb helpers,
and glibc at least as new as the build machine's). The tarball is the same folder plus the desktop entry and
icon, for distributions without dpkg.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
ICON = ROOT / "assets" / "tinychat.png"
INSTALL_DIR = "opt/tinychat"

# Libraries the bundle uses from the system (PyInstaller never bundles OpenGL, EGL or libxcb itself), and
# Qt's xcb helpers: bundled when the build machine has them, but Qt's xcb plugin refuses to start without
# them — and then names the wrong one — so they are declared too.
DEPENDS = (
    "libgl1", "libegl1", "libxcb1", "libxcb-cursor0", "libxcb-icccm4", "libxcb-keysyms1", "libxcb-image0",
    "libxcb-randr0", "libxcb-render-util0", "libxcb-shape0", "libxkbcommon-x11-0", "libfontconfig1",
    "libdbus-1-3",
)
_GLIBC = re.compile(rb"GLIBC_(2\.\d+)\x00")


def elf_files(folder: Path) -> list[Path]:
    """Every ELF file (executable or shared library) under `folder`, symlinks excluded."""
    found = []
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink():
            with path.open("rb") as f:
                if f.read(4) == b"\x7fELF":
                    found.append(path)
    return found


def glibc_needed(folder: Path) -> str:
    """The newest glibc symbol version any bundled binary requires, e.g. "2.34"."""
    versions = {m.group(1).decode() for p in elf_files(folder) for m in _GLIBC.finditer(p.read_bytes())}
    return max(versions, key=lambda v: tuple(int(x) for x in v.split(".")))


def depends_field(folder: Path) -> str:
    """The control file's Depends: line for this bundle."""
    return ", ".join([f"libc6 (>= {glibc_needed(folder)})", *DEPENDS])


def _tree_size_kib(folder: Path) -> int:
    return sum(p.lstat().st_size for p in folder.rglob("*") if not p.is_dir()) // 1024 + 1


def make_tarball(onedir: Path, version: str, out_dir: Path) -> Path:
    """tinychat-VERSION-linux-x86_64.tar.gz: the onedir app in `tinychat-VERSION/`, plus desktop entry and icon."""
    out = out_dir / f"tinychat-{version}-linux-x86_64.tar.gz"
    with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
        top = Path(tmp) / f"tinychat-{version}"
        shutil.copytree(onedir, top, symlinks=True, copy_function=os.link)
        shutil.copy2(HERE / "tinychat.desktop", top / "tinychat.desktop")
        shutil.copy2(ICON, top / "tinychat.png")
        # Same owner, order and no build-user names in every build: identical inputs give identical archives.
        subprocess.run(["tar", "--owner=0", "--group=0", "--numeric-owner", "--sort=name", "-czf",
                        str(out), "-C", tmp, top.name], check=True)
    return out


def _stage_deb(onedir: Path, version: str, root: Path) -> None:
    app = root / INSTALL_DIR
    shutil.copytree(onedir, app, symlinks=True, copy_function=os.link)
    bin_dir = root / "usr" / "bin"
    bin_dir.mkdir(parents=True)
    shutil.copyfile(HERE / "tinychat.sh", bin_dir / "tinychat")
    (bin_dir / "tinychat").chmod(0o755)
    share = root / "usr" / "share"
    (share / "applications").mkdir(parents=True)
    shutil.copyfile(HERE / "tinychat.desktop", share / "applications" / "tinychat.desktop")
    icons = share / "icons" / "hicolor" / "512x512" / "apps"
    icons.mkdir(parents=True)
    shutil.copyfile(ICON, icons / "tinychat.png")
    doc = share / "doc" / "tinychat"
    doc.mkdir(parents=True)
    (doc / "copyright").write_text(
        "TinyChat is MIT-licensed. It bundles Python, Qt (LGPLv3, via PySide6), llama.cpp (MIT) and NumPy\n"
        "(BSD); their licence files are inside /opt/tinychat/_internal.\n", encoding="utf-8")
    debian = root / "DEBIAN"
    debian.mkdir()
    control = (HERE / "control.in").read_text(encoding="utf-8")
    for key, value in {"VERSION": version, "INSTALLED_SIZE": str(_tree_size_kib(root)),
                       "DEPENDS": depends_field(onedir)}.items():
        control = control.replace(f"@{key}@", value)
    (debian / "control").write_text(control, encoding="utf-8")
    # dpkg installs what it is given: files 644, folders and programs 755, whatever the build umask was.
    for path in root.rglob("*"):
        if path.is_symlink():
            continue
        executable = path.is_dir() or os.access(path, os.X_OK)
        path.chmod(0o755 if executable else 0o644)


def make_deb(onedir: Path, version: str, out_dir: Path) -> Path:
    """tinychat_VERSION_amd64.deb, built with dpkg-deb (xz: the smallest download; ~30 s on 2 cores)."""
    out = out_dir / f"tinychat_{version}_amd64.deb"
    with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
        root = Path(tmp) / "root"
        _stage_deb(onedir, version, root)
        subprocess.run(["dpkg-deb", "--root-owner-group", "-Zxz", "--build", str(root), str(out)],
                       check=True, stdout=subprocess.DEVNULL)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("onedir", type=Path, help="the PyInstaller output folder (dist/tinychat)")
    ap.add_argument("--version", required=True)
    ap.add_argument("--out", type=Path, default=Path("dist"))
    ap.add_argument("--no-tarball", action="store_true", help="build only the .deb")
    args = ap.parse_args(argv)
    if not (args.onedir / "tinychat").is_file():
        print(f"{args.onedir} is not a TinyChat onedir build (no 'tinychat' program in it).", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    if not args.no_tarball:
        print(make_tarball(args.onedir, args.version, args.out))
    print(make_deb(args.onedir, args.version, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
