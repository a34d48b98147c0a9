"""`tinychat --self-test [--model PATH]`: proves that an installed TinyChat works on this computer.

Starts the real app (`app.shell.gui.run`) offscreen with a private temporary data folder, and once the main window
is up checks, in order: the Qt platform plugin, the main window, the conversation database (SQLite with
FTS5 search), the engine's native libraries, and — with `--model` — loads the model and generates a few
tokens through the GUI's engine worker thread. Prints one line per check and exits 0, or 1 with the reason.
Installers and CI run it against the built artefact, so it must need nothing from a source checkout.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from app.shell.self_test_engine import SelfTestFailed, generate_through_worker
from engine import cpu_build

# Each wait on the engine; generous because CI also runs this under CPU emulation (qemu), ~50× slower.
STEP_TIMEOUT_S = float(os.environ.get("TINYCHAT_SELF_TEST_TIMEOUT", "600"))
WINDOW_TIMEOUT_S = 60.0
# What the model manager imports lazily, when the user starts a download.
DOWNLOAD_MODULES = (
    "httpx2", "huggingface_hub.hf_api", "huggingface_hub.utils", "engine.download", "engine.hub",
)
PROMPT = "Say hello."
MAX_TOKENS = 8


@dataclass(frozen=True)
class CheckResult:
    """One line of the report: what was checked, whether it passed, and what was found (or why not)."""

    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{'ok  ' if self.ok else 'FAIL'}  {self.name}: {self.detail}"


def run(model_path: str | None) -> int:
    """Run every check, print the report, and return the exit code (0 only if all passed)."""
    if model_path is not None and not Path(model_path).exists():
        print(f"self-test FAILED: the model {model_path} does not exist.", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="tinychat-self-test-") as home:
        os.environ["TINYCHAT_HOME"] = home
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # a caller may ask for xcb to test it
        results = _run_in_app(Path(model_path).resolve() if model_path else None)
        log_tail = _log_tail(Path(home))
    return _report(results, log_tail)


def _run_in_app(model: Path | None) -> list[CheckResult]:
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from app.core.logging_setup import setup_logging
    from app.shell import gui

    setup_logging()
    results: list[CheckResult] = []
    started = time.perf_counter()
    qt_app = QApplication.instance() or QApplication([sys.argv[0]])
    results.append(_check("Qt platform plugin", lambda: _platform(qt_app)))
    print(results[0].line(), flush=True)
    results_before_window = len(results)

    def record(result: CheckResult) -> None:
        # Printed at once: if tearing the app down crashes, the findings are already out.
        results.append(result)
        print(result.line(), flush=True)

    def checks() -> None:
        record(_check("main window", lambda: _main_window(qt_app, started)))
        record(_check("conversation database", _database))
        record(_check("engine libraries", _engine_libraries))
        record(_check("library versions", _library_versions))
        record(_check("code colours", _code_colours))
        if model is not None:
            record(_check("model", lambda: generate_through_worker(model, PROMPT, MAX_TOKENS, STEP_TIMEOUT_S)))
        _close_windows(qt_app)  # as a user would: the window stops its engine thread on close
        qt_app.exit(0)

    def watchdog() -> None:
        record(CheckResult("time limit", False, f"the checks did not finish within {STEP_TIMEOUT_S:.0f} s"))
        _close_windows(qt_app)
        qt_app.exit(1)

    QTimer.singleShot(0, checks)
    limit = QTimer(singleShot=True, interval=int(STEP_TIMEOUT_S * 2.5 * 1000))
    limit.timeout.connect(watchdog)
    limit.start()
    try:
        gui.run([])
    except Exception as e:  # the app itself failed to start: that is the finding
        traceback.print_exc()
        record(CheckResult("app start", False, f"{type(e).__name__}: {e}"))
    limit.stop()
    if len(results) == results_before_window:
        record(CheckResult("main window", False, "the app's event loop ended before the window was shown"))
    return results


def _close_windows(qt_app: object) -> None:
    for w in qt_app.topLevelWidgets():  # type: ignore[attr-defined]
        if w.isVisible():
            w.close()


def _check(name: str, fn: Callable[[], str]) -> CheckResult:
    try:
        return CheckResult(name, True, fn())
    except SelfTestFailed as e:
        return CheckResult(name, False, str(e))
    except Exception as e:  # the report must name any failure, not crash on it
        traceback.print_exc()
        return CheckResult(name, False, f"{type(e).__name__}: {e}")


def _platform(qt_app: object) -> str:
    from PySide6.QtCore import qVersion

    wanted = os.environ["QT_QPA_PLATFORM"].split(":")[0]
    name = qt_app.platformName()  # type: ignore[attr-defined]
    if name != wanted:
        raise SelfTestFailed(f"Qt started the '{name}' platform plugin, not '{wanted}'")
    return f"{name} (Qt {qVersion()})"


def _main_window(qt_app: object, started: float) -> str:
    from PySide6.QtCore import QDeadlineTimer, QEventLoop
    from PySide6.QtWidgets import QMainWindow

    def shown() -> list[QMainWindow]:
        windows = [w for w in qt_app.topLevelWidgets() if isinstance(w, QMainWindow)]  # type: ignore[attr-defined]
        return [w for w in windows if w.isVisible() and w.windowHandle() and w.windowHandle().isExposed()]

    # The window system exposes the window a few events after show(): let those events run.
    deadline = QDeadlineTimer(int(WINDOW_TIMEOUT_S * 1000))
    while not shown() and not deadline.hasExpired():
        qt_app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)  # type: ignore[attr-defined]
        time.sleep(0.005)
    if not shown():
        raise SelfTestFailed(f"no main window was shown within {WINDOW_TIMEOUT_S:.0f} s")
    w = shown()[0]
    age = _process_age_s()
    since = f"{age:.2f} s after the process started" if age is not None else \
        f"{time.perf_counter() - started:.2f} s after Qt started"
    return f"'{w.windowTitle()}' {w.width()}×{w.height()}, visible {since}"


def _process_age_s() -> float | None:
    """Seconds since this process was created (Linux: /proc, 10 ms resolution), None elsewhere. For a frozen
    app this includes the bootloader and Python's start-up: the cold-start time a user waits."""
    try:
        start_ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return uptime - start_ticks / os.sysconf("SC_CLK_TCK")


def _database() -> str:
    import sqlite3

    from app.core import paths
    from app.core.store import Store

    store, notice = Store.open(paths.data_dir() / "self-test.db")
    try:
        if notice:
            raise SelfTestFailed(notice)
        conv = store.create_conversation()
        store.add_message(conv.id, None, "user", "Does full-text search find zebras?")
        hits = store.search("zebra")
        if len(hits) != 1:
            raise SelfTestFailed(f"full-text search found {len(hits)} messages instead of 1")
    finally:
        store.close()
    return f"SQLite {sqlite3.sqlite_version} with FTS5 search"


def _engine_libraries() -> str:
    import llama_cpp

    info = llama_cpp.llama_print_system_info().decode(errors="replace")
    # "CPU : SSE3 = 1 | AVX2 = 1 | … |": the instruction sets this build uses on this CPU.
    flags = [part.rsplit(":", 1)[-1].strip() for part in info.split("|")]
    features = sorted({f.split("=")[0].strip() for f in flags if f.endswith("= 1")})
    build = cpu_build.apply().build
    found = [f"llama.cpp {llama_cpp.__version__} ({build} build: {', '.join(features) or 'no CPU extensions'})"]
    if importlib.util.find_spec("mlx") is not None and sys.platform == "darwin":
        import mlx.core as mx

        # The first GPU operation is what fails when mlx.metallib is missing from the bundle.
        total = mx.arange(4).sum()
        mx.eval(total)
        if total.item() != 6:
            raise SelfTestFailed(f"MLX computed {total.item()} for 0+1+2+3")
        found.append(f"MLX on {mx.default_device()}")
    _check_download_stack()
    _check_child_environment()
    return "; ".join(found)


def _library_versions() -> str:
    """What About and "Copy diagnostics" report: the GUI and engine libraries must be found, with a version."""
    from app.core.version import NOT_INSTALLED, library_versions

    versions = library_versions()
    shown = {name: versions[name] for name in ("PySide6", "llama-cpp-python")}
    missing = [name for name, v in shown.items() if v == NOT_INSTALLED]
    if missing:
        raise SelfTestFailed(f"About would call {', '.join(missing)} not installed, though the app runs on them")
    return ", ".join(f"{name} {v}" for name, v in shown.items())


def _code_colours() -> str:
    """Code blocks are coloured by Pygments lexers, which a build bundles by name: check a few are there."""
    from app.chat.highlight import lexer_for

    missing = [lang for lang in ("python", "bash", "javascript", "json") if lexer_for(lang) is None]
    if missing:
        raise SelfTestFailed(f"no syntax colours for {', '.join(missing)}: their Pygments lexers are missing")
    return "Pygments lexers for python, bash, javascript, json"


def _check_download_stack() -> None:
    """The model manager imports its HTTP and Hub code only when the user downloads; import it now, so a
    build that left a piece out fails here and not in front of the user (nothing is sent: no request)."""
    for name in DOWNLOAD_MODULES:
        importlib.import_module(name)
    # urllib3 (the download body) is only looked up: importing it binds a socket to ::1 (its IPv6 probe),
    # and a self-test that opened a socket would disprove the offline promise it checks.
    if importlib.util.find_spec("urllib3") is None:
        raise SelfTestFailed("urllib3, which downloads use, is missing from the app")
    from huggingface_hub import hf_hub_url

    hf_hub_url("TinyLlama/TinyLlama-1.1B-Chat-v0.4", "config.json")


def _check_child_environment() -> None:
    """Programs the app opens (browser, file manager) must not inherit the bundle's library path."""
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle and bundle in os.environ.get("LD_LIBRARY_PATH", ""):
        raise SelfTestFailed("LD_LIBRARY_PATH still points into the app bundle; programs it opens would break")


def _log_tail(home: Path, lines: int = 20) -> str:
    logs = sorted(home.glob("logs/*.log"))
    if not logs:
        return ""
    return "\n".join(logs[0].read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])


def _report(results: list[CheckResult], log_tail: str) -> int:
    """The verdict after the per-check lines (already printed as each check finished)."""
    failed = [r for r in results if not r.ok]
    if failed:
        if log_tail:
            print("--- end of the log ---\n" + log_tail)
        print(f"self-test FAILED: {failed[0].name}: {failed[0].detail}")
        return 1
    print("self-test passed")
    return 0
