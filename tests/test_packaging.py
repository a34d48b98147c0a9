"""What the PyInstaller spec keeps out of the bundle, and what the .deb declares, decided without building.

`packaging/` is deliberately not a Python package (it would shadow PyPI's `packaging`), so its modules are
loaded from their files.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load(rel: str) -> ModuleType:
    path = ROOT / rel
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


prune = _load("packaging/bundle_prune.py")
build_packages = _load("packaging/linux/build_packages.py")


@pytest.mark.parametrize(("dest", "kept"), [
    ("PySide6/Qt/plugins/platforms/libqxcb.so", True),
    ("PySide6/Qt/plugins/platforms/libqoffscreen.so", True),
    ("PySide6/Qt/plugins/platforms/qwindows.dll", True),
    ("PySide6/Qt/plugins/platforms/libqcocoa.dylib", True),
    ("PySide6/Qt/plugins/platforms/libqwayland.so", False),
    ("PySide6/Qt/plugins/platforms/libqeglfs.so", False),
    ("PySide6/Qt/plugins/platformthemes/libqgtk3.so", False),
    ("PySide6/Qt/plugins/platformthemes/libqxdgdesktopportal.so", True),
    ("PySide6/Qt/plugins/platforminputcontexts/libqtvirtualkeyboardplugin.so", False),
    ("PySide6/Qt/plugins/platforminputcontexts/libcomposeplatforminputcontextplugin.so", True),
    ("PySide6/Qt/plugins/wayland-shell-integration/libxdg-shell.so", False),
    ("PySide6/Qt/plugins/sqldrivers/libqsqlite.so", False),
    ("PySide6/Qt/plugins/styles/qmodernwindowsstyle.dll", True),
    ("PySide6/Qt/translations/qtbase_de.qm", False),
    ("PySide6/Qt/lib/libQt6Gui.so.6", True),
    ("numpy/_core/_multiarray_umath.cpython-311-x86_64-linux-gnu.so", True),
])
def test_only_the_qt_plugins_tinychat_uses_are_bundled(dest: str, kept: bool) -> None:
    assert prune.qt_file_kept(dest) is kept


def test_libraries_only_dropped_plugins_needed_are_pruned_and_shared_ones_stay() -> None:
    binaries = [
        ("PySide6/QtGui.abi3.so", "/site/PySide6/QtGui.abi3.so", "EXTENSION"),
        ("PySide6/Qt/plugins/platforms/libqxcb.so", "/site/xcb.so", "BINARY"),
        ("PySide6/Qt/lib/libQt6Gui.so.6", "/site/libQt6Gui.so.6", "BINARY"),
        ("PySide6/Qt/lib/libQt6XcbQpa.so.6", "/site/libQt6XcbQpa.so.6", "BINARY"),
        ("PySide6/Qt/lib/libQt6WaylandClient.so.6", "/site/libQt6WaylandClient.so.6", "BINARY"),
        ("libxcb-cursor.so.0", "/usr/lib/x86_64-linux-gnu/libxcb-cursor.so.0", "BINARY"),
        ("libwayland-client.so.0", "/usr/lib/x86_64-linux-gnu/libwayland-client.so.0", "BINARY"),
        ("libpython3.11.so.1.0", "/usr/lib/libpython3.11.so.1.0", "BINARY"),
        ("llama_cpp/lib/libllama.so", "/site/llama_cpp/lib/libllama.so", "BINARY"),
        ("libQt6WaylandClient.so.6", "PySide6/Qt/lib/libQt6WaylandClient.so.6", "SYMLINK"),
    ]
    needs = {
        "/site/PySide6/QtGui.abi3.so": ["libQt6Gui.so.6"],
        "/site/xcb.so": ["libQt6XcbQpa.so.6"],
        "/site/libQt6XcbQpa.so.6": ["libQt6Gui.so.6", "libxcb-cursor.so.0"],
        "/site/libQt6WaylandClient.so.6": ["libwayland-client.so.0", "libQt6Gui.so.6"],
    }
    unused = prune.unneeded_libraries(binaries, lambda src: needs.get(src, []))
    assert unused == {"PySide6/Qt/lib/libQt6WaylandClient.so.6", "libwayland-client.so.0"}
    assert prune.dangling_links(binaries, unused) == {"libQt6WaylandClient.so.6"}


def _newest_glibc_in(path: Path) -> str:
    out = subprocess.run(["objdump", "-T", str(path)], capture_output=True, text=True, check=True).stdout
    versions = set(re.findall(r"GLIBC_(2\.\d+)", out))
    return max(versions, key=lambda v: tuple(map(int, v.split("."))))


@pytest.mark.skipif(not sys.platform.startswith("linux") or shutil.which("objdump") is None,
                    reason="reads Linux ELF files with binutils")
def test_deb_requires_the_newest_glibc_any_bundled_binary_uses(tmp_path: Path) -> None:
    import llama_cpp

    lib = Path(llama_cpp.__file__).parent / "lib" / "libllama.so"
    shutil.copy(lib, tmp_path / "libllama.so")
    shutil.copy(sys.executable, tmp_path / "python")
    (tmp_path / "notes.txt").write_text("GLIBC_2.99 in a text file is not a requirement")
    expected = max(_newest_glibc_in(lib), _newest_glibc_in(Path(sys.executable)),
                   key=lambda v: tuple(map(int, v.split("."))))
    assert build_packages.glibc_needed(tmp_path) == expected
    depends = build_packages.depends_field(tmp_path)
    assert depends.startswith(f"libc6 (>= {expected}), ")
    for qt_xcb_helper in ("libxcb-icccm4", "libxcb-keysyms1", "libxcb-cursor0", "libgl1", "libegl1"):
        assert qt_xcb_helper in depends.split(", ")
