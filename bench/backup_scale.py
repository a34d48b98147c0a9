"""Backups that scale: `tinychat import` and `tinychat export` (JSON) of a generated heavy user's history,
each in its own process, timed, with the process's peak memory (ru_maxrss from wait4), and the round trip
checked exactly: every conversation exported again equals, value for value, the one the file held.

    python -m bench.backup_scale 100 1000 5000

Prints one row per size, and the disk the import used (database and write-ahead log) per byte of the file.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import ijson

from bench.history_data import write_history

ROOT = Path(__file__).resolve().parents[1]


def run_measured(home: Path, *args: str) -> tuple[float, float, float]:
    """`tinychat ARGS` in a child with `home` as TINYCHAT_HOME: (wall seconds, CPU seconds, peak resident
    MB). CPU time is the steadier figure on a busy machine."""
    env = {**os.environ, "TINYCHAT_HOME": str(home), "PYTHONPATH": str(ROOT)}
    started = time.monotonic()
    child = subprocess.Popen([sys.executable, "-m", "app", *args], cwd=ROOT, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = child.stdout.read(), child.stderr.read()  # type: ignore[union-attr]
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.monotonic() - started
    if child.returncode != 0:
        raise RuntimeError(f"tinychat {' '.join(args)} failed: {err.decode()[-500:]} {out.decode()[-200:]}")
    return seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def digests(path: Path) -> dict[str, str]:
    """Each conversation of an export file by id: a digest of its canonical JSON, read as a stream."""
    found: dict[str, str] = {}
    with open(path, "rb") as fh:
        for conv in ijson.items(fh, "conversations.item", use_float=True):
            text = json.dumps(conv, sort_keys=True, ensure_ascii=False)
            found[conv["id"]] = hashlib.sha256(text.encode()).hexdigest()
    return found


def measure(count: int, work: Path) -> dict[str, float | int | bool]:
    """Import then export a history of `count` conversations; the figures of one row."""
    source = work / f"history-{count}.json"
    messages = write_history(source, count)
    home = work / f"home-{count}"
    import_s, import_cpu, import_mb = run_measured(home, "import", str(source))
    db = home / "data" / "tinychat.db"
    wal = db.with_name(db.name + "-wal")
    disk = db.stat().st_size + (wal.stat().st_size if wal.exists() else 0)
    back = work / f"export-{count}.json"
    export_s, export_cpu, export_mb = run_measured(home, "export", "--format", "json", "--out", str(back))
    exact = digests(source) == digests(back)
    size = source.stat().st_size
    for path in (source, back):
        path.unlink()
    return {"conversations": count, "messages": messages, "file_mb": size / 1e6, "import_s": import_s,
            "import_cpu_s": import_cpu, "import_peak_mb": import_mb,
            "export_s": export_s, "export_cpu_s": export_cpu, "export_peak_mb": export_mb,
            "disk_per_byte": disk / size, "exact": exact}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sizes", nargs="*", type=int, default=[100, 1000, 5000])
    args = ap.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.1f}", flush=True)
    print("conversations | messages | file MB | import s (CPU s) | import peak MB | export s (CPU s) | "
          "export peak MB | disk/file byte | round trip exact", flush=True)
    with tempfile.TemporaryDirectory(prefix="tinychat-backup-") as tmp:
        for count in args.sizes:
            r = measure(count, Path(tmp))
            print(f"{r['conversations']} | {r['messages']} | {r['file_mb']:.0f} | "
                  f"{r['import_s']:.1f} ({r['import_cpu_s']:.1f}) | {r['import_peak_mb']:.0f} | "
                  f"{r['export_s']:.1f} ({r['export_cpu_s']:.1f}) | {r['export_peak_mb']:.0f} | "
                  f"{r['disk_per_byte']:.2f} | {'yes' if r['exact'] else 'NO'}", flush=True)
    print(f"load average at end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
