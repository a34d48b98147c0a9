"""The Linux installers `make dist` builds, used the way a user would: the .deb installed with dpkg + apt and
run with no network, the .tar.gz unpacked anywhere, the frozen app run on an older CPU.

The build itself (PyInstaller + xz, ~2–3 min on 2 cores) happens only when the sources or installed packages
changed since the last one (`packaging/release.py --reuse`); otherwise these tests take ~20 s.
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.gguf_model import build_cached

ROOT = Path(__file__).resolve().parents[1]
DIST = ROOT / "dist"
VERSION = importlib.metadata.version("tinychat")
INSTALL_DIR = Path("/opt/tinychat")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the .deb is built and installed on Linux"),
    pytest.mark.timeout(1800),
]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("TINYCHAT_HOME", "QT_QPA_PLATFORM", "LD_LIBRARY_PATH")}
    return {**env, "QT_QPA_PLATFORM": "offscreen", **extra}


def _root_prefix() -> list[str]:
    if os.geteuid() == 0:
        return []
    if shutil.which("sudo") and subprocess.run(["sudo", "-n", "true"], capture_output=True).returncode == 0:
        return ["sudo", "-n"]
    pytest.fail("Installing the .deb needs root or password-less sudo.")


def _installed_version() -> str | None:
    proc = subprocess.run(["dpkg-query", "-W", "-f=${Status} ${Version}", "tinychat"], capture_output=True, text=True)
    return proc.stdout.split()[-1] if proc.returncode == 0 and "ok installed" in proc.stdout else None


@pytest.fixture(scope="module")
def built() -> Path:
    """dist/ with the onedir app, .tar.gz and .deb of exactly these sources (built now if not yet)."""
    subprocess.run([sys.executable, str(ROOT / "packaging" / "release.py"), "--reuse", "--no-smoke"],
                   cwd=ROOT, check=True, timeout=1500)
    return DIST


@pytest.fixture(scope="module")
def installed(built: Path) -> Iterator[Path]:
    """The .deb installed with dpkg, dependencies completed by apt; removed again afterwards."""
    root = _root_prefix()
    if _installed_version() is not None:
        pytest.fail("A tinychat package is already installed on this machine; this test will not replace it. "
                    "Remove it with `apt-get remove tinychat` to run the test.")
    deb = built / f"tinychat_{VERSION}_amd64.deb"
    if subprocess.run([*root, "dpkg", "-i", str(deb)], capture_output=True).returncode != 0:
        subprocess.run([*root, "apt-get", "-f", "install", "-y", "-q"], check=True, capture_output=True)
    try:
        assert _installed_version() == VERSION
        yield deb
    finally:
        subprocess.run([*root, "apt-get", "remove", "-y", "-q", "tinychat"], capture_output=True)


def test_installed_app_answers_with_no_network_through_its_worker_thread(installed: Path) -> None:
    model = build_cached("tiny", scripted=True)
    cmd = ["unshare", "-n", "tinychat", "--self-test", "--model", str(model)]
    proc = subprocess.run([*_root_prefix(), *cmd], env=_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ok    model: tiny-scripted-f32.gguf via llama.cpp: 8 tokens" in proc.stdout
    # What About and "Copy diagnostics" show, read inside the frozen app (which has no package metadata).
    libraries = (f"ok    library versions: PySide6 {importlib.metadata.version('PySide6-Essentials')}, "
                 f"llama-cpp-python {importlib.metadata.version('llama_cpp_python')}")
    assert libraries in proc.stdout
    assert shutil.which("tinychat") == "/usr/bin/tinychat"


def test_installed_app_starts_on_x11_with_the_declared_libraries(installed: Path) -> None:
    proc = subprocess.run(["xvfb-run", "-a", "tinychat", "--self-test"], env=_env(QT_QPA_PLATFORM="xcb"),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ok    Qt platform plugin: xcb" in proc.stdout


def _package_depends(package_names: list[str]) -> set[str]:
    """The packages these packages depend on (one level), names only."""
    out = subprocess.run(["dpkg-query", "-W", "-f=${Depends}\n", *package_names], capture_output=True,
                         text=True).stdout
    return {alt.strip().split()[0].split(":")[0] for line in out.splitlines() for dep in line.split(",")
            for alt in dep.split("|") if alt.strip()}


def _owner(lib: str) -> str:
    """The Debian package holding `lib`; with merged /usr, dpkg may know it under /lib or /usr/lib."""
    real = os.path.realpath(lib)
    for candidate in dict.fromkeys([lib, real, real.removeprefix("/usr"), "/usr" + lib]):
        out = subprocess.run(["dpkg", "-S", candidate], capture_output=True, text=True).stdout
        if out:
            return out.split(":")[0]
    return "(no package)"


def test_every_system_library_the_bundle_loads_comes_from_a_declared_dependency(installed: Path) -> None:
    control = subprocess.run(["dpkg-deb", "-f", str(installed), "Depends"], capture_output=True, text=True).stdout
    declared = [d.strip().split()[0] for d in control.split(",")]
    allowed = set(declared) | _package_depends(declared)
    internal = INSTALL_DIR / "_internal"
    outside: dict[str, str] = {}
    missing: list[str] = []
    for path in INSTALL_DIR.rglob("*"):
        if path.is_symlink() or not path.is_file() or path.read_bytes()[:4] != b"\x7fELF":
            continue
        ldd = subprocess.run(["ldd", str(path)], env={"LD_LIBRARY_PATH": str(internal)}, capture_output=True,
                             text=True).stdout
        for line in ldd.splitlines():
            if "not found" in line:
                missing.append(f"{path.relative_to(INSTALL_DIR)}: {line.strip()}")
            elif "=>" in line and line.split("=>")[1].split()[0].startswith("/"):
                lib = line.split("=>")[1].split()[0]
                if not os.path.realpath(lib).startswith(str(INSTALL_DIR)):
                    outside[lib] = str(path.relative_to(INSTALL_DIR))
    assert missing == []
    owners = {lib: _owner(lib) for lib in outside}
    undeclared = {lib: pkg for lib, pkg in owners.items() if pkg not in allowed}
    assert undeclared == {}, f"declare these in packaging/linux/build_packages.py DEPENDS: {undeclared}"
    assert {"libgl1", "libegl1", "libxcb-cursor0", "libxcb-icccm4", "libxcb-keysyms1"} <= set(declared)


def test_deb_puts_a_launcher_a_desktop_entry_and_an_icon_where_desktops_look(installed: Path) -> None:
    assert os.access("/usr/bin/tinychat", os.X_OK)
    entry = Path("/usr/share/applications/tinychat.desktop").read_text(encoding="utf-8")
    assert "Exec=tinychat\n" in entry and "Icon=tinychat\n" in entry
    assert Path("/usr/share/icons/hicolor/512x512/apps/tinychat.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if shutil.which("desktop-file-validate"):
        proc = subprocess.run(["desktop-file-validate", "/usr/share/applications/tinychat.desktop"],
                              capture_output=True, text=True)
        assert proc.returncode == 0 and proc.stdout == "", proc.stdout


def test_removing_the_package_removes_every_installed_file(installed: Path) -> None:
    root = _root_prefix()
    subprocess.run([*root, "apt-get", "remove", "-y", "-q", "tinychat"], check=True, capture_output=True)
    assert _installed_version() is None
    assert not INSTALL_DIR.exists()
    assert not Path("/usr/bin/tinychat").exists()


def test_tarball_runs_from_wherever_it_is_unpacked(built: Path, tmp_path: Path) -> None:
    with tarfile.open(built / f"tinychat-{VERSION}-linux-x86_64.tar.gz") as tar:
        tar.extractall(tmp_path, filter="tar")
    program = tmp_path / f"tinychat-{VERSION}" / "tinychat"
    proc = subprocess.run([str(program), "--self-test", "--model", str(build_cached("tiny", scripted=True))],
                          env=_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.skipif(shutil.which("qemu-x86_64") is None, reason="qemu-user is installed by `make dist-deps`")
def test_frozen_app_generates_on_a_haswell_cpu_without_avx512(built: Path) -> None:
    model = build_cached("tiny", scripted=True)
    proc = subprocess.run(["qemu-x86_64", "-cpu", "Haswell", str(built / "tinychat" / "tinychat"), "--self-test",
                           "--model", str(model)], env=_env(), capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ok    model: " in proc.stdout


@pytest.mark.skipif(shutil.which("qemu-x86_64") is None or shutil.which("cc") is None,
                    reason="needs qemu-user and a C compiler")
def test_haswell_emulation_rejects_avx512_code(tmp_path: Path) -> None:
    """The control for the test above: the emulated CPU really refuses AVX-512, the instructions a native
    build on this machine would contain."""
    src = tmp_path / "avx512.c"
    src.write_text("#include <immintrin.h>\nint main(void) { volatile __m512 a = _mm512_set1_ps(1.0f);"
                   " __m512 b = _mm512_add_ps(a, a); return (int)_mm512_reduce_add_ps(b) == 32 ? 0 : 1; }\n")
    exe = tmp_path / "avx512"
    subprocess.run(["cc", "-O1", "-mavx512f", str(src), "-o", str(exe)], check=True)
    proc = subprocess.run(["qemu-x86_64", "-cpu", "Haswell", str(exe)], capture_output=True, timeout=60)
    assert proc.returncode in (-4, 132)  # SIGILL: qemu re-raises it on itself
