"""Turns the PyInstaller onedir folder into the Linux downloads: a `.tar.gz` and a `.deb`.

    python packaging/linux/build_packages.py dist/tinychat --version 0.1.0 --out dist

Both carry the same `share/` tree, made here: the desktop entry, the icon in every hicolor size plus the SVG,
and the man pages `tinychat.1` and `tinychat-engine.1`, generated from the programs' own argument parsers by
argparse-manpage. The .deb installs the folder as /opt/tinychat, the `tinychat` and `tinychat-engine`
commands in /usr/bin and `share/` under /usr/share, and declares the system libraries the bundle does not
carry (OpenGL/EGL, xcb and Qt's xcb helpers, and glibc at least as new as the build machine's). The tarball
is the folder with `share/` and `install-menu-entry`, which adds a menu entry for wherever it was unpacked.
"""

from __future__ import annotations

import argparse
import gzip
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
INSTALL_DIR = "opt/tinychat"
# The commands the onedir answers to (the spec makes `tinychat-engine` a link to the one executable).
PROGRAMS = ("tinychat", "tinychat-engine")
# Each man page: the module and function that build the program's parser, and its one-line summary.
MAN_PAGES = {
    "tinychat": ("app.__main__", "build_parser", "offline desktop chat with TinyLlama"),
    "tinychat-engine": ("engine.cli", "build_parser", "TinyChat's inference engine from the command line"),
}

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


def write_man_page(program: str, version: str, out: Path) -> Path:
    """`out` = PROGRAM.1.gz, generated from the program's argument parser (the one it parses with) by
    argparse-manpage, with the extra sections of packaging/linux/PROGRAM.1.include."""
    module, function, summary = MAN_PAGES[program]
    tool = shutil.which("argparse-manpage", path=str(Path(sys.executable).parent)) or shutil.which("argparse-manpage")
    if tool is None:
        raise SystemExit("argparse-manpage is not installed; install the dev extra: pip install -e '.[dev]'")
    # A wide "terminal": argparse would break usage lines at 80 columns, and man fills the text itself.
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    page = subprocess.run([tool, "--module", module, "--function", function, "--prog", program,
                           "--project-name", "TinyChat", "--version", version, "--manual-title", "User Commands",
                           "--description", summary, "--include", str(HERE / f"{program}.1.include")],
                          env=env, cwd=ROOT, check=True, capture_output=True, text=True).stdout
    out.parent.mkdir(parents=True, exist_ok=True)
    with gzip.GzipFile(out, "wb", compresslevel=9, mtime=0) as gz:  # gzip -9n, as Debian installs man pages
        gz.write(page.encode("utf-8"))
    return out


def make_share(version: str, share: Path) -> None:
    """The files desktops and `man` look for, laid out as under /usr/share."""
    (share / "applications").mkdir(parents=True)
    shutil.copyfile(HERE / "tinychat.desktop", share / "applications" / "tinychat.desktop")
    # The icons are drawn by Qt in a child process: this script itself stays free of Qt.
    subprocess.run([sys.executable, str(ROOT / "packaging" / "make_icons.py"), "--hicolor", str(share / "icons")],
                   env={**os.environ, "QT_QPA_PLATFORM": "offscreen"}, check=True)
    for program in MAN_PAGES:
        write_man_page(program, version, share / "man" / "man1" / f"{program}.1.gz")


def make_tarball(onedir: Path, share: Path, version: str, out_dir: Path) -> Path:
    """tinychat-VERSION-linux-x86_64.tar.gz: the onedir app in `tinychat-VERSION/`, with `share/` and the
    `install-menu-entry` script."""
    out = out_dir / f"tinychat-{version}-linux-x86_64.tar.gz"
    with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
        top = Path(tmp) / f"tinychat-{version}"
        shutil.copytree(onedir, top, symlinks=True, copy_function=os.link)
        shutil.copytree(share, top / "share")
        shutil.copy2(HERE / "install-menu-entry", top / "install-menu-entry")
        (top / "install-menu-entry").chmod(0o755)
        # Same owner, order and no build-user names in every build: identical inputs give identical archives.
        subprocess.run(["tar", "--owner=0", "--group=0", "--numeric-owner", "--sort=name", "-czf",
                        str(out), "-C", tmp, top.name], check=True)
    return out


def _stage_deb(onedir: Path, share: Path, version: str, root: Path) -> None:
    app = root / INSTALL_DIR
    shutil.copytree(onedir, app, symlinks=True, copy_function=os.link)
    bin_dir = root / "usr" / "bin"
    bin_dir.mkdir(parents=True)
    for program in PROGRAMS:
        (bin_dir / program).write_text(
            f"#!/bin/sh\n# TinyChat itself is the self-contained folder /{INSTALL_DIR} (PyInstaller onedir).\n"
            f'exec /{INSTALL_DIR}/{program} "$@"\n', encoding="utf-8")
        (bin_dir / program).chmod(0o755)
    shutil.copytree(share, root / "usr" / "share")
    doc = root / "usr" / "share" / "doc" / "tinychat"
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
    shutil.copyfile(HERE / "preinst", debian / "preinst")
    (debian / "preinst").chmod(0o755)
    # dpkg installs what it is given: files 644, folders and programs 755, whatever the build umask was.
    for path in [root, *root.rglob("*")]:
        if path.is_symlink():
            continue
        executable = path.is_dir() or os.access(path, os.X_OK)
        path.chmod(0o755 if executable else 0o644)


def _data_members(root: Path) -> list[str]:
    """What data.tar lists, in dpkg-deb's order (sorted): everything staged except DEBIAN/ and the bare
    /opt folder. A package that lists /opt owns it, and dpkg then tries to delete it on removal."""
    paths = [p for p in root.rglob("*") if p.relative_to(root).parts[0] != "DEBIAN"]
    members = [f"./{p.relative_to(root).as_posix()}" for p in paths]
    return ["./", *sorted(m for m in members if m != "./opt")]


def _xz_tar(folder: Path, members: list[str], out: Path) -> None:
    listing = "".join(f"{m}\0" for m in members)
    subprocess.run(["tar", "--owner=0", "--group=0", "--numeric-owner", "-I", "xz -6 -T0", "-cf", str(out),
                    "-C", str(folder), "--no-recursion", "--null", "-T", "-"], input=listing.encode(), check=True)


def make_deb(onedir: Path, share: Path, version: str, out_dir: Path) -> Path:
    """tinychat_VERSION_amd64.deb (xz: the smallest download; ~30 s on 2 cores). Assembled as dpkg-deb does
    (an ar archive of debian-binary, control.tar and data.tar), except that data.tar leaves out /opt."""
    out = out_dir / f"tinychat_{version}_amd64.deb"
    with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
        work = Path(tmp)
        root = work / "root"
        _stage_deb(onedir, share, version, root)
        (work / "debian-binary").write_text("2.0\n")
        _xz_tar(root / "DEBIAN", ["./", *sorted(f"./{p.name}" for p in (root / "DEBIAN").iterdir())],
                work / "control.tar.xz")
        _xz_tar(root, _data_members(root), work / "data.tar.xz")
        out.unlink(missing_ok=True)
        # ar D: no timestamps or owners in the member headers, as dpkg-deb writes them.
        subprocess.run(["ar", "rcD", str(out), "debian-binary", "control.tar.xz", "data.tar.xz"], cwd=work,
                       check=True)
        # dpkg-deb reads it back as dpkg will: a malformed package fails the build, not the install.
        subprocess.run(["dpkg-deb", "--info", str(out)], check=True, stdout=subprocess.DEVNULL)
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
    with tempfile.TemporaryDirectory(dir=args.out) as tmp:
        share = Path(tmp) / "share"
        make_share(args.version, share)
        if not args.no_tarball:
            print(make_tarball(args.onedir, share, args.version, args.out))
        print(make_deb(args.onedir, share, args.version, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
