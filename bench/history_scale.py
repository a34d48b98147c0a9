"""History scale: `python -m bench.history_scale [--sizes 100 1000 5000]` (offscreen by default).

For each size, a heavy user's history (bench/history_store.py: 20–60 messages a conversation, answers with
code) is generated once into `--cache`, then measured through the real window (no model loaded):

- start → window shown: `app.shell.gui.run` in a fresh process (wall time, and the main thread's CPU),
  after a clean close, and after an unclean one (the full integrity check runs);
- the sidebar after an answer: an answer stored, then the controller's signal the window acts on, in a
  year-old conversation (its row moves to the top) and in the newest one (its row is repainted);
- the filter box, one keystroke at a time; Ctrl+F for a common word and a prefix, results list included;
- opening a 60-message conversation; and, as a child process each, `tinychat export` (JSON) and
  `tinychat import` into an empty home: wall time and peak memory (the child's maxrss).

Interactions are measured as CPU time of the GUI thread (`time.thread_time`), which a busy machine
inflates far less than the wall clock; each includes the event processing (layout, paint) it causes.
Prints the Markdown table for docs/benchmarks.md with the machine's load.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtWidgets import QApplication

from bench.gui_responsiveness import bench_launch
from bench.history_store import build_history

ROOT = Path(__file__).resolve().parents[1]
FILTER_WORDS = ("the code", "python")
SEARCHES = {"common word": "the", "prefix": "pyt"}


def cpu_ms(app: QApplication, action: Callable[[], object]) -> float:
    """Main-thread CPU milliseconds of `action` and the events it posts (layout, paint)."""
    start = time.thread_time()
    action()
    app.processEvents()
    return (time.thread_time() - start) * 1000


def measure_window(app: QApplication, home: Path, ids: dict[str, str]) -> dict[str, object]:
    """The interactions of the table, in one window over the history at `home`."""
    from app.chat.search_dialog import SearchDialog
    from app.core.settings import Settings
    from app.core.store import Store
    from app.shell.main_window import MainWindow

    store, _ = Store.open(home / "data" / "tinychat.db")
    window = MainWindow(store, Settings(), model=None, window_state=home / "window.ini")
    window.resize(1100, 760)
    window.show()
    window.pages.setCurrentIndex(0)
    for _ in range(5):
        app.processEvents()
    out: dict[str, object] = {}
    out["listing_ms"] = cpu_ms(app, window.session.refresh_conversations)  # the start's listing, or an import's

    def answer_in(cid: str) -> None:
        leaf = store.active_branch(cid)[-1]
        store.add_message(cid, leaf.id, "assistant", "One more answer.")  # as the stream writer leaves it
        window.session.controller.conversationChanged.emit(cid)

    older = [c.id for c in store.list_conversations()[-6:]]  # the oldest: each answer moves its row furthest
    out["moved_ms"] = [cpu_ms(app, lambda c=c: answer_in(c)) for c in older]
    out["top_ms"] = [cpu_ms(app, lambda: answer_in(older[-1])) for _ in range(5)]

    keys: list[float] = []
    for word in FILTER_WORDS:
        for n in range(1, len(word) + 1):
            keys.append(cpu_ms(app, lambda w=word[:n]: window.sidebar.filter_box.setText(w)))
        keys.append(cpu_ms(app, window.sidebar.filter_box.clear))
    out["filter_ms"] = keys

    dialog = SearchDialog(store, window)
    dialog.show()
    for name, query in SEARCHES.items():
        times = []
        for _ in range(3):
            dialog.query.setText(query)
            dialog._timer.stop()  # the bench runs the search itself rather than wait for the typing pause
            times.append(cpu_ms(app, dialog.run_search))
        out[f"search_{name}"] = (statistics.median(times), len(dialog.hits()))
    dialog.close()

    opens = []
    for _ in range(3):
        window.session.open(None)
        app.processEvents()
        opens.append(cpu_ms(app, lambda: window.session.open(ids["long"])))
    out["open_ms"] = statistics.median(opens)
    out["open_built"] = window.chat_view.built_count()
    window.close()
    store.close()
    return out


def run_cli(home: Path, *args: str) -> tuple[float, float, str]:
    """`tinychat ARGS` in a child process: wall seconds, peak memory (MB) and its last line of output."""
    env = dict(os.environ, TINYCHAT_HOME=str(home))
    env.pop("QT_QPA_PLATFORM", None)
    start = time.monotonic()
    child = subprocess.Popen([sys.executable, "-m", "app", *args], cwd=ROOT, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = child.stdout.read() if child.stdout else ""
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    lines = output.strip().splitlines() or [f"exit {child.returncode}"]
    return time.monotonic() - start, usage.ru_maxrss / 1024, lines[-1][:100]


def measure_transfer(home: Path, scratch: Path) -> dict[str, tuple[float, float, str]]:
    export = scratch / "export.json"
    into = scratch / "import-home"
    shutil.rmtree(into, ignore_errors=True)
    out = {"export": run_cli(home, "export", "--format", "json", "--out", str(export))}
    out["import"] = run_cli(into, "import", str(export))
    shutil.rmtree(into, ignore_errors=True)
    export.unlink(missing_ok=True)
    return out


def fmt(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} / {max(values):.1f} ms"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 5000])
    ap.add_argument("--cache", type=Path, default=Path("/tmp/tinychat-history-scale"))
    ap.add_argument("--launches", type=int, default=3)
    ap.add_argument("--no-transfer", action="store_true", help="skip export/import")
    args = ap.parse_args()
    app = QApplication.instance() or QApplication([])
    columns: dict[int, dict[str, str]] = {}
    loads = [os.getloadavg()[0]]
    for n in args.sizes:
        home = args.cache / f"h{n}"
        db = home / "data" / "tinychat.db"
        db.parent.mkdir(parents=True, exist_ok=True)
        ids, messages = build_history(db, n)
        col: dict[str, str] = {"messages": f"{messages / 1000:.1f}k", "db": f"{db.stat().st_size / 2**20:.0f} MB"}
        cpu: list[float] = []
        wall = bench_launch(args.launches, home, cpu=cpu)
        col["start"] = f"{statistics.median(wall):.2f} s (CPU {statistics.median(cpu):.2f} s)"
        unclean_cpu: list[float] = []
        record = db.with_name(db.name + ".clean")
        wall = bench_launch(1, home, before=lambda r=record: r.unlink(missing_ok=True), cpu=unclean_cpu)
        col["start_unclean"] = f"{wall[0]:.2f} s (CPU {unclean_cpu[0]:.2f} s)"
        w = measure_window(app, home, ids)
        col["listing"] = f"{w['listing_ms']:.0f} ms"
        col["moved"] = fmt(w["moved_ms"])  # type: ignore[arg-type]
        col["top"] = fmt(w["top_ms"])  # type: ignore[arg-type]
        col["filter"] = fmt(w["filter_ms"])  # type: ignore[arg-type]
        col["search"] = " / ".join(f"{w[f'search_{k}'][0]:.0f} ms ({w[f'search_{k}'][1]} hits)"  # type: ignore[index]
                                   for k in SEARCHES)
        col["open"] = f"{w['open_ms']:.0f} ms ({w['open_built']} built)"
        if not args.no_transfer:
            t = measure_transfer(home, args.cache)
            for k in ("export", "import"):
                col[k] = f"{t[k][0]:.1f} s / {t[k][1]:.0f} MB — “{t[k][2]}”"
        columns[n] = col
        loads.append(os.getloadavg()[0])
    _print(columns, loads)


def _print(columns: dict[int, dict[str, str]], loads: list[float]) -> None:
    sizes = list(columns)
    rows = [("messages (database size)", lambda c: f"{c['messages']} ({c['db']})"),
            ("start → window shown, wall (main-thread CPU)", lambda c: c["start"]),
            ("start after an unclean shutdown (full `quick_check`)", lambda c: c["start_unclean"]),
            ("sidebar after an answer, row moved to the top (median / max CPU)", lambda c: c["moved"]),
            ("sidebar after an answer, row already on top (median / max CPU)", lambda c: c["top"]),
            ("whole list (start, after an import) (CPU)", lambda c: c["listing"]),
            ("filter per keystroke (median / max CPU)", lambda c: c["filter"]),
            ("Ctrl+F common word / prefix, query + results list (CPU)", lambda c: c["search"]),
            ("open a 60-message chat (CPU)", lambda c: c["open"])]
    if "export" in columns[sizes[0]]:
        rows += [("`tinychat export` JSON: time / peak memory", lambda c: c["export"]),
                 ("`tinychat import`: time / peak memory", lambda c: c["import"])]
    print(f"Load average (1 min) during the run: {', '.join(f'{x:.1f}' for x in loads)} on "
          f"{os.cpu_count()} cores; Python {sys.version.split()[0]}, Qt platform {QApplication.platformName()}.\n")
    print("| | " + " | ".join(f"{n:,}" for n in sizes) + " |")
    print("|---|" + "---|" * len(sizes))
    for name, cell in rows:
        print(f"| {name} | " + " | ".join(cell(columns[n]) for n in sizes) + " |")


if __name__ == "__main__":
    main()
