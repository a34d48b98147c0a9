"""Trims a PyInstaller analysis to what TinyChat uses: the spec calls these after `Analysis`.

PySide6's hooks collect every Qt plugin of every imported Qt module (Wayland compositors, EGL devices,
print support, SQL drivers, TLS…), and binary dependency analysis then pulls in each plugin's Qt and system
libraries. Dropping the unused plugins and every library only they needed took a minimal build from 227 MB
to 164 MB. Imported by `tinychat.spec` (with the spec's folder on sys.path), so it is a plain module here.
"""

from __future__ import annotations

import os
import posixpath
import subprocess
from collections.abc import Callable, Iterable
from pathlib import Path, PurePosixPath

# Plugin folder → plugin names kept (None: the whole folder). Names are file stems without "lib".
QT_PLUGINS_KEPT: dict[str, frozenset[str] | None] = {
    # xcb for X11 and XWayland (Qt falls back to it when its Wayland plugin is absent), offscreen for
    # --self-test, the native ones for Windows and macOS.
    "platforms": frozenset({"qxcb", "qoffscreen", "qminimal", "qwindows", "qdirect2d", "qcocoa"}),
    "xcbglintegrations": None,
    # Compose key / dead keys, and input methods (CJK typing) through IBus; the virtual keyboard needs QtQuick.
    "platforminputcontexts": frozenset({"composeplatforminputcontextplugin", "ibusplatforminputcontextplugin"}),
    # Desktop portal file dialogs; the GTK 3 theme would pull in ~40 GTK libraries.
    "platformthemes": frozenset({"qxdgdesktopportal"}),
    "styles": None,  # the native Windows 11 / macOS look
    # No SVG: TinyChat draws no SVG and asks the theme for no icons (the svg plugins pull in QtSvg).
    "imageformats": frozenset({"qico", "qicns", "qjpeg", "qgif"}),
}

# Where binary dependency analysis finds system libraries on Linux.
_SYSTEM_DIRS = ("/lib/", "/lib64/", "/usr/lib/", "/usr/lib64/", "/usr/local/lib/")


def _parts(dest: str) -> tuple[str, ...]:
    return PurePosixPath(dest.replace("\\", "/")).parts


def _stem(filename: str) -> str:
    name = filename.split(".")[0]
    return name[3:] if name.startswith("lib") else name


def qt_file_kept(dest: str) -> bool:
    """False for a Qt plugin or translation TinyChat does not use; True for every other file."""
    parts = _parts(dest)
    if "PySide6" not in parts:
        return True
    if "translations" in parts:
        # Qt's own strings in ~100 languages (7 MB); TinyChat's interface is English and installs no
        # QTranslator. Keep them again if it ever does.
        return False
    if "plugins" not in parts:
        return True
    i = parts.index("plugins")
    if len(parts) < i + 3:  # a file directly in plugins/ (none today): keep it
        return True
    kept = QT_PLUGINS_KEPT.get(parts[i + 1], frozenset())
    return kept is None or _stem(parts[-1]) in kept


def _prunable(dest: str, src: str) -> bool:
    """Libraries that only ever arrive as a dependency: system libraries and Qt's own libraries."""
    parts = _parts(dest)
    name = parts[-1]
    if name.startswith("libpython"):  # the bootloader dlopens it; nothing lists it as NEEDED
        return False
    from_system = len(parts) == 1 and src.startswith(_SYSTEM_DIRS)
    qt_lib = parts[:3] == ("PySide6", "Qt", "lib")
    return from_system or qt_lib


def unneeded_libraries(
    binaries: Iterable[tuple[str, str, str]], needed_by: Callable[[str], Iterable[str]]
) -> set[str]:
    """Destinations of prunable libraries that no kept binary needs, directly or through another library.

    `binaries` are (dest, src, typecode) entries; `needed_by(src)` lists the sonames a binary links to
    (PyInstaller's `bindepend.get_imports`). Roots are all non-prunable binaries: extension modules, kept
    Qt plugins, libraries loaded with ctypes (libllama), libpython.
    """
    entries = list(binaries)
    by_name: dict[str, list[tuple[str, str]]] = {}
    roots: list[str] = []
    for dest, src, kind in entries:
        if kind == "SYMLINK":  # a link to another entry (src is its destination), not a binary to read
            continue
        if _prunable(dest, src):
            by_name.setdefault(os.path.basename(dest), []).append((dest, src))
        else:
            roots.append(src)
    reached: set[str] = set()
    todo = list(roots)
    seen_src: set[str] = set()
    while todo:
        src = todo.pop()
        if src in seen_src:
            continue
        seen_src.add(src)
        for soname in needed_by(src):
            for dest, lib_src in by_name.get(os.path.basename(soname), ()):
                if dest not in reached:
                    reached.add(dest)
                    todo.append(lib_src)
    return {dest for dest, src, kind in entries if kind != "SYMLINK" and _prunable(dest, src) and dest not in reached}


def dangling_links(toc: Iterable[tuple[str, str, str]], removed: set[str]) -> set[str]:
    """Destinations of SYMLINK entries (PyInstaller 6 links top-level sonames into package folders)
    whose target was removed."""
    gone = {_parts(r) for r in removed}

    def points_to(dest: str, target: str) -> tuple[str, ...]:  # a link's target is relative to its folder
        return _parts(posixpath.normpath(posixpath.join(posixpath.dirname(dest.replace("\\", "/")), target)))

    return {dest for dest, target, kind in toc if kind == "SYMLINK" and points_to(dest, target) in gone}


def _has_debug_info(path: Path) -> bool:
    with path.open("rb") as f:
        if f.read(4) != b"\x7fELF":
            return False
    sections = subprocess.run(["readelf", "-S", "-W", str(path)], capture_output=True, text=True).stdout
    return " .debug_info " in sections


def strip_debug_info(folder: Path) -> list[Path]:
    """Remove debug sections from the ELF files under `folder` that have them; returns those files."""
    files = [p for p in folder.rglob("*") if p.is_file() and not p.is_symlink() and _has_debug_info(p)]
    if files:
        subprocess.run(["strip", "--strip-debug", *map(str, files)], check=True)
    return files
