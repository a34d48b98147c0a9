"""Runs the conversation corpus through `tinychat import` as a user would: one child process per file,
each with a private TINYCHAT_HOME, a memory limit and a time limit. The store is then exported (in this
process, and by `tinychat export` too when the import was taken), and one child opens the main window
on every store that took a file.

`python -m tests.corpus.conversation_runner` prints the figures docs/benchmarks.md quotes.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.core import transfer
from app.core.store import Store
from tests.corpus.conversations import Case, cases, write_baseline

ROOT = Path(__file__).resolve().parents[2]
MEMORY_LIMIT = 1024 * 2**20  # address space of each child: a file must not make import take more
TIME_LIMIT_S = 10
WINDOW_CHILD = Path(__file__).with_name("window_check.py")


@dataclass
class Run:
    """One finished (or stopped) child process."""

    rc: int | None  # None: killed at the time limit
    stdout: str
    stderr: str


@dataclass
class Outcome:
    case: Case
    home: Path
    imported: Run
    stored: list[dict[str, Any]]  # the store's conversations afterwards, as the export format has them
    exported: Run | None = None  # `tinychat export --out -`, run when the import was taken
    window: dict[str, Any] = field(default_factory=dict)  # filled for stores that took the file

    def cli_export_matches(self) -> bool:
        """`tinychat export` printed exactly the conversations the store holds."""
        if self.exported is None or self.exported.rc != 0:
            return False
        try:
            return json.loads(self.exported.stdout)["conversations"] == self.stored
        except (ValueError, KeyError, TypeError):
            return False


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def tinychat(home: Path, *args: str) -> Run:
    """`python -m app ARGS` with `home` as TINYCHAT_HOME, the memory limit and the time limit."""
    env = {**os.environ, "TINYCHAT_HOME": str(home), "PYTHONPATH": str(ROOT)}
    try:
        run = subprocess.run([sys.executable, "-m", "app", *args], cwd=ROOT, env=env, capture_output=True,
                             timeout=TIME_LIMIT_S, preexec_fn=_limit_memory)
    except subprocess.TimeoutExpired as exc:
        return Run(None, (exc.stdout or b"").decode("utf-8", "replace"), (exc.stderr or b"").decode())
    return Run(run.returncode, run.stdout.decode("utf-8", "replace"), run.stderr.decode("utf-8", "replace"))


def prepare_template(work: Path) -> tuple[Path, list[dict[str, Any]]]:
    """A home holding the baseline conversations (imported by the CLI itself) and its export."""
    home = work / "template"
    source = work / "baseline.json"
    write_baseline(source)
    run = tinychat(home, "import", str(source))
    if run.rc != 0:
        raise RuntimeError(f"the baseline did not import: {run.stderr}")
    return home, export_store(home)


def run_case(case: Case, template: Path, work: Path) -> Outcome:
    home = work / "homes" / case.name
    shutil.copytree(template / "data", home / "data")
    path = work / "files" / f"{case.name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    case.write(path)
    imported = tinychat(home, "import", str(path))
    outcome = Outcome(case, home, imported, export_store(home))
    if imported.rc == 0:
        outcome.exported = tinychat(home, "export", "--out", "-")
    return outcome


def export_store(home: Path) -> list[dict[str, Any]]:
    """The store's conversations, through the export code and real JSON text."""
    store, _ = Store.open(home / "data" / "tinychat.db")
    try:
        return json.loads(json.dumps(transfer.export_json(store)))["conversations"]
    finally:
        store.close()


def check_windows(outcomes: list[Outcome]) -> None:
    """Open the main window on every store that took its file, in one child, and attach the findings."""
    took = [o for o in outcomes if o.imported.rc == 0]
    if not took:
        return
    env = {**os.environ, "PYTHONPATH": str(ROOT), "QT_QPA_PLATFORM": "offscreen"}
    run = subprocess.run([sys.executable, str(WINDOW_CHILD), *(str(o.home) for o in took)], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=60 + 10 * len(took))
    found = {r["home"]: r for r in map(json.loads, run.stdout.splitlines())}
    for o in took:
        o.window = found.get(str(o.home), {"error": f"no report (exit {run.returncode}): {run.stderr[-500:]}"})


def run_all(work: Path, workers: int = 2) -> tuple[list[Outcome], list[dict[str, Any]]]:
    """Every case, `workers` at a time; returns the outcomes and the baseline store's conversations."""
    template, before = prepare_template(work)
    with ThreadPoolExecutor(workers) as pool:
        outcomes = list(pool.map(lambda c: run_case(c, template, work), cases()))
    check_windows(outcomes)
    return outcomes, before


def refused_cleanly(o: Outcome, before: list[dict[str, Any]]) -> bool:
    """Exit 1, one `tinychat:` line, no traceback, and the store exactly as before."""
    lines = o.imported.stderr.strip().splitlines()
    return (o.imported.rc == 1 and len(lines) == 1 and lines[0].startswith("tinychat: ")
            and "Traceback" not in o.imported.stderr and o.stored == before)


def imported_correctly(o: Outcome, before: list[dict[str, Any]]) -> bool:
    """Exit 0, a clean stderr, the expected conversations added, the rest untouched, and the window opens."""
    if o.imported.rc != 0 or o.imported.stderr or not o.cli_export_matches() or o.window.get("ok") is not True:
        return False
    by_id = {c["id"]: c for c in o.stored}
    for cid, (title, messages) in o.case.expected.items():
        conv = by_id.pop(cid, None)
        if conv is None or conv["title"] != title:
            return False
        if sorted((m["id"], m["content"]) for m in conv["messages"]) != sorted(messages):
            return False
    return sorted(by_id.values(), key=lambda c: c["id"]) == sorted(before, key=lambda c: c["id"])


def main() -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        started = time.monotonic()
        outcomes, before = run_all(Path(tmp))
        seconds = time.monotonic() - started
    refused = [o for o in outcomes if not o.case.imported]
    took = [o for o in outcomes if o.case.imported]
    print(f"tried {len(outcomes)}: {len(refused)} meant to be refused, {len(took)} meant to be imported")
    print(f"refused cleanly: {sum(refused_cleanly(o, before) for o in refused)} / {len(refused)}")
    print(f"imported correctly (export and main window checked): "
          f"{sum(imported_correctly(o, before) for o in took)} / {len(took)}")
    print(f"time limit hit: {sum(o.imported.rc is None for o in outcomes)}; "
          f"tracebacks: {sum('Traceback' in o.imported.stderr for o in outcomes)}; wall time {seconds:.0f} s")


if __name__ == "__main__":
    main()
