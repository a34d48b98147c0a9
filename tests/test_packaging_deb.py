"""The Linux installers `make dist` builds, used the way a user would: the .deb installed with dpkg + apt and
run with no network, the .tar.gz unpacked anywhere, the frozen app run on an older CPU.

The build itself (PyInstaller + xz, ~2–3 min on 2 cores) happens only when the sources or installed packages
changed since the last one (`packaging/release.py --reuse`); otherwise these tests take ~20 s.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.gguf_model import build_cached
from tests.fixtures.hf_model import build_mlx_cached
from tests.fixtures.vocab import SCRIPT_TEXT
from tests.journey import Home, JourneyApp
from tests.test_packaging import png_size

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
    assert proc.stderr == ""  # the report is all it prints: no Qt or llama.cpp chatter
    assert shutil.which("tinychat") == "/usr/bin/tinychat"


def test_installed_engine_command_answers_as_the_readme_shows(installed: Path) -> None:
    convo = '{"messages": [{"role": "user", "content": "Hi"}]}'
    chat = subprocess.run(["tinychat-engine", "chat", "--model", str(build_cached("tiny", scripted=True)),
                           "--temperature", "0"], input=convo, env=_env(), capture_output=True, text=True,
                          timeout=300)
    assert chat.returncode == 0, chat.stderr
    assert chat.stdout == SCRIPT_TEXT + "\n"
    assert shutil.which("tinychat-engine") == "/usr/bin/tinychat-engine"


def test_installed_engine_says_mlx_is_not_part_of_this_installation(installed: Path) -> None:
    model = build_mlx_cached("tiny", None, scripted=True)
    proc = subprocess.run(["tinychat-engine", "chat", "--model", str(model)], env=_env(), capture_output=True,
                          text=True, input='{"messages": [{"role": "user", "content": "Hi"}]}', timeout=300)
    assert proc.returncode != 0
    assert proc.stderr == (f"tinychat-engine: {model.name} is an MLX model folder, but MLX is not installed with "
                           "this TinyChat. Choose a .gguf model file instead.\n")


def test_installed_app_exports_conversations_from_the_command_line(installed: Path, tmp_path: Path) -> None:
    proc = subprocess.run(["tinychat", "export", "--out", "-"], env=_env(TINYCHAT_HOME=str(tmp_path)),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["format"] == "tinychat-conversations"


@pytest.mark.parametrize(("page", "mentions"), [
    ("tinychat", ("tinychat export", "tinychat import", "--self-test", "TINYCHAT_HOME")),
    ("tinychat-engine", ("tinychat-engine chat", "tinychat-engine render", "tinychat-engine validate")),
])
def test_man_finds_the_installed_manual_pages(installed: Path, page: str, mentions: tuple[str, ...]) -> None:
    proc = subprocess.run(["man", page], env={**_env(), "MANWIDTH": "100", "MANPAGER": "cat", "PAGER": "cat"},
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    for words in mentions:
        assert words in proc.stdout
    assert Path(f"/usr/share/man/man1/{page}.1.gz").is_file()


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
    for size in (16, 22, 24, 32, 48, 64, 128, 256, 512):
        assert png_size(Path(f"/usr/share/icons/hicolor/{size}x{size}/apps/tinychat.png")) == (size, size)
    assert "<svg" in Path("/usr/share/icons/hicolor/scalable/apps/tinychat.svg").read_text(encoding="utf-8")
    if shutil.which("desktop-file-validate"):
        proc = subprocess.run(["desktop-file-validate", "/usr/share/applications/tinychat.desktop"],
                              capture_output=True, text=True)
        assert proc.returncode == 0 and proc.stdout == "", proc.stdout


def test_installed_app_about_names_the_libraries_it_runs_on(installed: Path, desktop, hub, tmp_path: Path) -> None:
    # Through the window, as a user files a bug report: Help ▸ About in the installed app, read on the
    # accessibility bus. The frozen app has no package metadata, so "not installed" here was a real risk.
    home = Home.create(tmp_path / "home", hub)
    with JourneyApp(desktop, home, tmp_path, command=["/usr/bin/tinychat"]) as app:
        app.menu("Help", "About TinyChat")
        about = app.dialog("About TinyChat")
        shown = app.text(app.one(None, "Diagnostics", within=about))
    # Qt reads a table out cell by cell, between the frame marks U+FDD0/U+FDD1.
    cells = [c.strip() for c in re.split("[\ufdd0\ufdd1\n]", shown)]
    value = {label: cells[i + 1] for i, label in enumerate(cells[:-1]) if label}
    pyside = importlib.metadata.version("PySide6-Essentials")
    assert value["Qt / PySide6"].endswith(f" / {pyside}"), shown
    assert value["llama-cpp-python"] == importlib.metadata.version("llama_cpp_python"), shown
    assert value["TinyChat"] == VERSION, shown


def test_removing_the_package_removes_its_files_and_says_nothing_about_opt(installed: Path) -> None:
    listed = subprocess.run(["dpkg", "-L", "tinychat"], capture_output=True, text=True).stdout.splitlines()
    assert str(INSTALL_DIR) in listed and "/opt" not in listed  # /opt belongs to the system, not to TinyChat
    proc = subprocess.run([*_root_prefix(), "apt-get", "remove", "-y", "-q", "tinychat"], capture_output=True,
                          text=True, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "/opt" not in proc.stdout + proc.stderr
    assert _installed_version() is None
    assert not INSTALL_DIR.exists()
    for path in ("/usr/bin/tinychat", "/usr/bin/tinychat-engine", "/usr/share/man/man1/tinychat.1.gz",
                 "/usr/share/icons/hicolor/scalable/apps/tinychat.svg"):
        assert not Path(path).exists()
    assert Path("/opt").is_dir()


def test_tarball_runs_from_wherever_it_is_unpacked_and_adds_itself_to_the_menu(built: Path, tmp_path: Path) -> None:
    where = tmp_path / "my programs"
    where.mkdir()
    with tarfile.open(built / f"tinychat-{VERSION}-linux-x86_64.tar.gz") as tar:
        tar.extractall(where, filter="tar")
    folder = where / f"tinychat-{VERSION}"
    data = tmp_path / "user-data"
    menu = subprocess.run([str(folder / "install-menu-entry")], env={**_env(), "XDG_DATA_HOME": str(data)},
                          capture_output=True, text=True, timeout=60)
    assert menu.returncode == 0, menu.stderr
    entry = data / "applications" / "tinychat.desktop"
    if shutil.which("desktop-file-validate"):
        check = subprocess.run(["desktop-file-validate", str(entry)], capture_output=True, text=True)
        assert check.returncode == 0 and check.stdout == "", check.stdout
    program = folder / "tinychat"
    assert f'Exec="{program}"\n' in entry.read_text(encoding="utf-8")  # tests/test_packaging.py launches one
    assert png_size(data / "icons/hicolor/48x48/apps/tinychat.png") == (48, 48)
    proc = subprocess.run([str(program), "--self-test", "--model", str(build_cached("tiny", scripted=True))],
                          env=_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    engine = subprocess.run([str(folder / "tinychat-engine"), "render", "--format", "chatml"], env=_env(),
                            input='{"messages": [{"role": "user", "content": "Hi"}]}', capture_output=True,
                            text=True, timeout=120)
    assert engine.returncode == 0 and engine.stdout.endswith("<|im_start|>assistant\n"), engine.stderr


def _emulated(cpu: str, onedir: Path) -> list[str]:
    """qemu-user running the frozen app as `cpu`. PyInstaller's bootloader re-executes itself once with
    LD_LIBRARY_PATH at _internal/, and qemu-user does not follow an exec: the app would run natively. So the
    emulated process starts as that second stage, with the environment the bootloader gives it (read from
    /proc/PID/environ of a native run)."""
    stage2 = {"_PYI_ARCHIVE_FILE": str(onedir / "tinychat"), "_PYI_PARENT_PROCESS_LEVEL": "-1",
              "_PYI_LINUX_PROCESS_NAME": "tinychat", "LD_LIBRARY_PATH": str(onedir / "_internal")}
    return ["qemu-x86_64", "-cpu", cpu, *(arg for k, v in stage2.items() for arg in ("-E", f"{k}={v}"))]


@pytest.mark.skipif(shutil.which("qemu-x86_64") is None, reason="qemu-user is installed by `make dist-deps`")
def test_frozen_app_generates_on_a_haswell_cpu_without_avx512(built: Path) -> None:
    model = build_cached("tiny", scripted=True)
    onedir = built / "tinychat"
    proc = subprocess.run([*_emulated("Haswell", onedir), str(onedir / "tinychat"), "--self-test",
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


# The oldest processor the baseline llama.cpp build is made for, as qemu names it (no AVX2, FMA or F16C).
OLD_CPU = "SandyBridge"


def _forced_self_test(program: Path, build: str, *emulator: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*emulator, str(program), "--self-test", "--model", str(build_cached("tiny", scripted=True))],
                          env=_env(TINYCHAT_LLAMA_BUILD=build), capture_output=True, text=True, timeout=900)


def test_frozen_app_answers_on_its_baseline_build_when_forced(built: Path) -> None:
    proc = _forced_self_test(built / "tinychat" / "tinychat", "baseline")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    engine_line = next(line for line in proc.stdout.splitlines() if "engine libraries:" in line)
    assert engine_line.startswith("ok    engine libraries: llama.cpp 0.3.36 (baseline build: ")
    assert "AVX2" not in engine_line and "FMA" not in engine_line  # what the loaded CPU backend reports
    assert "ok    model: tiny-scripted-f32.gguf via llama.cpp: 8 tokens" in proc.stdout


def test_baseline_libraries_load_each_other_not_the_main_builds_namesakes(built: Path) -> None:
    """The frozen app runs with LD_LIBRARY_PATH at _internal/, which holds the main build's libggml*.so.0: the
    baseline libraries must still find their own (DT_RPATH comes before LD_LIBRARY_PATH), and OpenMP's
    runtime in the bundle."""
    internal = built / "tinychat" / "_internal"
    folder = internal / "llama_cpp" / "lib-baseline"
    found: dict[str, str] = {}
    for library in ("libllama.so", "libggml.so.0", "libggml-cpu.so.0"):
        ldd = subprocess.run(["ldd", str(folder / library)], env={"LD_LIBRARY_PATH": str(internal)},
                             capture_output=True, text=True, check=True).stdout
        found |= {line.split()[0]: line.split()[2] for line in ldd.splitlines() if " => /" in line}
    for name in ("libggml.so.0", "libggml-base.so.0", "libggml-cpu.so.0"):
        assert found[name] == str(folder / name)
    assert found["libgomp.so.1"] == str(internal / "libgomp.so.1")


@pytest.mark.skipif(shutil.which("qemu-x86_64") is None, reason="qemu-user is installed by `make dist-deps`")
def test_frozen_app_generates_on_a_cpu_without_avx2_with_its_baseline_build(built: Path) -> None:
    program = built / "tinychat" / "tinychat"
    proc = _forced_self_test(program, "baseline", *_emulated(OLD_CPU, program.parent))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ok    model: " in proc.stdout
    # The main build on the same emulated processor dies of an illegal instruction: the baseline is needed.
    # (Chosen by force: under qemu-user /proc/cpuinfo still lists this machine's own flags.)
    main = _forced_self_test(program, "avx2", *_emulated(OLD_CPU, program.parent))
    assert main.returncode in (-4, 132), main.stdout + main.stderr


@pytest.mark.skipif(shutil.which("qemu-x86_64") is None or shutil.which("cc") is None,
                    reason="needs qemu-user and a C compiler")
@pytest.mark.parametrize("instruction", ["vpaddd %%ymm0, %%ymm0, %%ymm0", "vfmadd231ps %%xmm0, %%xmm0, %%xmm0"],
                         ids=["avx2", "fma"])
def test_old_cpu_emulation_rejects_avx2_and_fma_code(tmp_path: Path, instruction: str) -> None:
    """The control for the test above: the emulated processor refuses what the main build executes."""
    src = tmp_path / "op.c"
    src.write_text(f'int main(void) {{ __asm__ volatile("vxorps %%xmm0, %%xmm0, %%xmm0\\n\\t{instruction}"'
                   ' ::: "xmm0"); return 0; }\n')
    exe = tmp_path / "op"
    subprocess.run(["cc", "-O1", str(src), "-o", str(exe)], check=True)
    assert subprocess.run([str(exe)], timeout=60).returncode == 0  # this machine runs it
    proc = subprocess.run(["qemu-x86_64", "-cpu", OLD_CPU, str(exe)], capture_output=True, timeout=60)
    assert proc.returncode in (-4, 132)  # SIGILL
