"""What the PyInstaller spec keeps out of the bundle, and what the Linux packages hold and do, checked without
freezing: the packages are built around a stand-in app folder (tests/test_packaging_deb.py tests the real one).

`packaging/` is deliberately not a Python package (it would shadow PyPI's `packaging`), so its modules are
loaded from their files.
"""

from __future__ import annotations

import gzip
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable
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


linux_only = pytest.mark.skipif(not sys.platform.startswith("linux") or shutil.which("dpkg") is None,
                                reason="the Linux packages are built with Debian's tools")
VERSION = "9.8.7"
STUB = """#!/bin/sh
printf '%s\\n' "$0" "$@" > "$TINYCHAT_STUB_RECORD"
"""


@pytest.fixture(scope="module")
def packages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The .deb and .tar.gz built by build_packages.py around a stand-in onedir folder: a `tinychat` script
    that records how it was started, its `tinychat-engine` link, and one real ELF library."""
    tmp = tmp_path_factory.mktemp("packages")
    onedir = tmp / "onedir"
    (onedir / "_internal").mkdir(parents=True)
    shutil.copy(shutil.which("true") or "/bin/true", onedir / "_internal" / "libstandin.so")
    (onedir / "tinychat").write_text(STUB)
    (onedir / "tinychat").chmod(0o755)
    (onedir / "tinychat-engine").symlink_to("tinychat")
    assert build_packages.main([str(onedir), "--version", VERSION, "--out", str(tmp / "out")]) == 0
    return {"deb": tmp / "out" / f"tinychat_{VERSION}_amd64.deb",
            "tarball": tmp / "out" / f"tinychat-{VERSION}-linux-x86_64.tar.gz"}


@pytest.fixture(scope="module")
def deb_files(packages: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The .deb's files, unpacked by dpkg-deb."""
    out = tmp_path_factory.mktemp("deb-files")
    subprocess.run(["dpkg-deb", "-x", str(packages["deb"]), str(out)], check=True)
    return out


def render_man_page(page: Path) -> str:
    proc = subprocess.run(["man", "-l", str(page)], env={**os.environ, "MANWIDTH": "100"},
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    return proc.stdout


@linux_only
@pytest.mark.skipif(shutil.which("man") is None, reason="man-db is installed by `make dist-deps`")
def test_man_page_documents_every_command_of_the_apps_own_parser(deb_files: Path) -> None:
    from app.__main__ import build_parser

    text = render_man_page(deb_files / "usr/share/man/man1/tinychat.1.gz")
    commands = next(a for a in build_parser()._actions if a.dest == "command").choices  # type: ignore[union-attr]
    assert {"export", "import"} <= set(commands)
    for name in commands:  # a subcommand added to the parser needs no change here or in packaging
        assert f"tinychat {name}" in text
    for option in ("--self-test", "--out PATH", "--conversation ID", "TINYCHAT_HOME", "tinychat-engine(1)"):
        assert option in text
    assert f"TinyChat {VERSION}" in text


@linux_only
@pytest.mark.skipif(shutil.which("man") is None, reason="man-db is installed by `make dist-deps`")
def test_engine_man_page_documents_render_chat_and_validate(deb_files: Path) -> None:
    text = render_man_page(deb_files / "usr/share/man/man1/tinychat-engine.1.gz")
    for words in ("tinychat-engine render", "tinychat-engine chat", "tinychat-engine validate", "--max-tokens",
                  "MLX model folder"):
        assert words in text


@linux_only
def test_man_pages_are_gzipped_without_a_timestamp(deb_files: Path) -> None:
    for page in (deb_files / "usr/share/man/man1").iterdir():
        raw = page.read_bytes()
        assert raw[:2] == b"\x1f\x8b" and raw[4:8] == b"\0\0\0\0"  # gzip -n: builds differ only in content
        assert gzip.decompress(raw).startswith(b".TH ")


def png_size(path: Path) -> tuple[int, int]:
    """Width and height of the PNG image at `path`, decoded by Qt (fails the test if it is no PNG)."""
    from PySide6.QtGui import QImage

    image = QImage(str(path))
    assert not image.isNull(), f"{path} is not a readable image"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return image.width(), image.height()


@linux_only
def test_deb_ships_the_icon_in_every_hicolor_size_and_as_svg(deb_files: Path) -> None:
    hicolor = deb_files / "usr/share/icons/hicolor"
    for size in (16, 22, 24, 32, 48, 64, 128, 256, 512):
        assert png_size(hicolor / f"{size}x{size}/apps/tinychat.png") == (size, size)
    svg = (hicolor / "scalable/apps/tinychat.svg").read_text(encoding="utf-8")
    assert "<svg" in svg and "<path" in svg and "<image" not in svg  # drawn, not a bitmap wrapped in SVG


def _dpkg(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """dpkg acting on a private system under `root`, its maintainer scripts told so by DPKG_ROOT."""
    return subprocess.run(["dpkg", f"--root={root}", "--force-script-chrootless", "--force-depends",
                           "--force-not-root", *args], capture_output=True, text=True, timeout=120)


@pytest.fixture
def private_system(tmp_path: Path) -> Path:
    """An empty system for dpkg: its database and nothing else, not even /opt."""
    root = tmp_path / "system"
    (root / "var/lib/dpkg/info").mkdir(parents=True)
    (root / "var/lib/dpkg/updates").mkdir()
    (root / "var/lib/dpkg/status").touch()
    return root


@linux_only
def test_deb_leaves_opt_to_the_system_so_removal_says_nothing_about_it(packages: dict[str, Path],
                                                                       private_system: Path) -> None:
    install = _dpkg(private_system, "-i", str(packages["deb"]))
    assert install.returncode == 0, install.stdout + install.stderr
    assert (private_system / "opt/tinychat/tinychat").is_file()  # /opt was made for it by the preinst
    listed = _dpkg(private_system, "-L", "tinychat").stdout.splitlines()
    assert "/opt/tinychat" in listed and "/opt" not in listed
    (private_system / "opt/other-vendor").mkdir()
    remove = _dpkg(private_system, "-r", "tinychat")
    assert remove.returncode == 0, remove.stdout + remove.stderr
    assert "/opt" not in remove.stdout + remove.stderr
    assert sorted(p.name for p in (private_system / "opt").iterdir()) == ["other-vendor"]


@pytest.fixture
def unpacked(packages: dict[str, Path], tmp_path: Path) -> Path:
    """The tarball unpacked where a user might: a folder whose path has spaces, quotes, $ and a backslash."""
    where = tmp_path / "my apps" / "it's \"$HOME\" \\ `here`"
    where.mkdir(parents=True)
    with tarfile.open(packages["tarball"]) as tar:
        tar.extractall(where, filter="tar")
    return where / f"tinychat-{VERSION}"


def _wait_for(condition: Callable[[], bool], timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)
    return condition()


@linux_only
@pytest.mark.skipif(shutil.which("desktop-file-validate") is None or shutil.which("gio") is None,
                    reason="desktop-file-utils and libglib2.0-bin are installed by `make dist-deps`")
def test_menu_entry_from_the_tarball_starts_the_unpacked_program(unpacked: Path, tmp_path: Path) -> None:
    data = tmp_path / "user-data"
    env = {**os.environ, "XDG_DATA_HOME": str(data), "TINYCHAT_STUB_RECORD": str(tmp_path / "started")}
    proc = subprocess.run([str(unpacked / "install-menu-entry")], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    entry = data / "applications" / "tinychat.desktop"
    check = subprocess.run(["desktop-file-validate", str(entry)], capture_output=True, text=True)
    assert check.returncode == 0 and check.stdout == "", check.stdout
    for size in (16, 22, 24, 32, 48, 64, 128, 256, 512):
        assert png_size(data / f"icons/hicolor/{size}x{size}/apps/tinychat.png") == (size, size)
    assert (data / "icons/hicolor/scalable/apps/tinychat.svg").is_file()
    # GLib reads the entry as GNOME's and Xfce's menus do, and starts what its Exec line names.
    launch = subprocess.run(["gio", "launch", str(entry)], env=env, capture_output=True, text=True, timeout=60)
    assert launch.returncode == 0, launch.stderr
    assert _wait_for(lambda: (tmp_path / "started").exists() and (tmp_path / "started").read_text() != "")
    assert (tmp_path / "started").read_text().splitlines() == [str(unpacked / "tinychat")]

    removed = subprocess.run([str(unpacked / "install-menu-entry"), "--remove"], env=env, capture_output=True,
                             text=True)
    assert removed.returncode == 0, removed.stderr
    assert [p for p in data.rglob("*") if p.is_file()] == []


@linux_only
def test_menu_entry_is_refused_with_a_sentence_for_a_folder_menus_cannot_start(packages: dict[str, Path],
                                                                             tmp_path: Path) -> None:
    where = tmp_path / "100% offline"
    where.mkdir()
    with tarfile.open(packages["tarball"]) as tar:
        tar.extractall(where, filter="tar")
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "user-data")}
    proc = subprocess.run([str(where / f"tinychat-{VERSION}" / "install-menu-entry")], env=env,
                          capture_output=True, text=True)
    assert proc.returncode == 1
    assert proc.stderr.startswith("Menus cannot start programs from a folder whose path has a line break or a %")
    assert not (tmp_path / "user-data").exists()


@pytest.mark.parametrize(("name", "args", "says"), [
    ("tinychat", ["--version"], "TinyChat "),
    ("tinychat-engine", ["render", "--format", "chatml"], "<|im_start|>user\nHi<|im_end|>"),
])
def test_the_frozen_entry_script_is_the_app_or_the_engine_by_the_name_it_is_started_as(
        tmp_path: Path, name: str, args: list[str], says: str) -> None:
    shutil.copy(ROOT / "packaging" / "launcher.py", tmp_path / name)  # the name, as a link gives it frozen
    proc = subprocess.run([sys.executable, str(tmp_path / name), *args], cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(ROOT)},
                          input='{"messages": [{"role": "user", "content": "Hi"}]}', capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert says in proc.stdout
