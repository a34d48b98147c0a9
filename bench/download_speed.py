"""Download throughput of the model manager against `curl` on the same local server, one run.

The fake Hub (tests/fakehub.py, in a process of its own) publishes a large generated `.gguf` the way the
Hub does: metadata with its LFS sha256, the resolve URL redirecting to a CDN URL that honours ranges.
Each round fetches it with `curl -L -o` and with TinyChat's transfer (engine/download.py: the metadata
request, the redirect, the ranged GET, sha256 verification, fsync, move into place), in rotating order,
each in a child process of its own so its CPU time (user+sys) and peak memory (VmHWM) are its alone.

    python -m bench.download_speed [--size-mb 2048] [--rounds 3] [--lines 0,125] [--baseline DIR]

`--lines`: the server's line speeds in MB/s, one section each (0: loopback as fast as it goes, where
curl is limited by nothing but its CPU; 125: a 1 Gbit/s line). `--baseline DIR`: also measure another
version's `engine/` package (`mkdir DIR && git archive main engine | tar -x -C DIR`) in the same rounds.
Both write into `--dest` (default: a RAM disk when it has room, so the drive's write-back speed limits
neither side); curl's time includes an fsync of its file, which TinyChat does before trusting a file.
Target: TinyChat ≥ 0.8× curl's throughput, memory flat (the peak does not grow with the file).
Prints a Markdown section for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO, NAME = "bench/Big-GGUF", "big.gguf"
BLOCK = 16 << 20


def make_file(path: Path, size: int) -> None:
    """`size` bytes of incompressible data (one random block repeated: hashing cost is the same)."""
    block = os.urandom(BLOCK)
    with path.open("wb") as f:
        left = size
        while left:
            left -= f.write(memoryview(block)[: min(BLOCK, left)])


def serve(path: Path) -> None:
    """Child: publish `path` on a fake Hub and print its endpoint; then each line on stdin sets the line
    speed in bytes/s (0: as fast as it goes), answered with "ok"; ends when stdin closes."""
    from tests.fakehub import FakeHub

    with FakeHub() as hub:
        hub.add_repo(REPO, {NAME: path})
        file = hub.repos[REPO].files[NAME]
        _ = file.sha256, file.blob_id  # computed before the clock starts
        print(hub.endpoint, flush=True)
        for line in sys.stdin:
            hub.faults.trickle_bps = int(line) or None
            print("ok", flush=True)


def peak_kb(pid: int | str = "self") -> int:
    """Peak resident memory of a process (VmHWM: this program's own, unlike ru_maxrss after a fork)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def fetch(endpoint: str, dest: Path) -> None:
    """Child: download the file as the model manager does; print time, CPU and memory as JSON."""
    import engine
    from engine import network_log
    from engine.download import Progress, download_snapshot
    from engine.hub import HubSession

    network_log.install()  # as in the app: every socket operation passes the audit hook
    reports: list[Progress] = []
    before, peak_before = resource.getrusage(resource.RUSAGE_SELF), peak_kb()
    t0 = time.perf_counter()
    with network_log.purpose("Model download", "bench"), HubSession(endpoint) as session:
        snapshot = session.snapshot(REPO, "main", [NAME])
        download_snapshot(session, snapshot, dest, progress=reports.append)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_SELF)  # all threads: the hasher's time too
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    print(json.dumps({"wall": wall, "cpu_transfer": cpu, "peak_before_kb": peak_before, "peak_kb": peak_kb(),
                      "reports": len(reports), "engine": str(Path(engine.__file__).parent)}), flush=True)


def run_child(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float, int, str]:
    """Run `cmd`; its wall time, CPU seconds (user+sys), peak RSS in kB (sampled), and stdout."""
    t0 = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.Popen(cmd, stdout=out, text=True, env=env)
        peak = 0
        while True:
            with contextlib.suppress(OSError, ValueError):
                peak = max(peak, peak_kb(proc.pid))
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            time.sleep(0.02)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read()
    if proc.returncode:
        raise SystemExit(f"{cmd[0]} failed with exit code {proc.returncode}")
    return wall, usage.ru_utime + usage.ru_stime, peak, text

def round_curl(url: str, dest: Path) -> dict:
    out = dest / NAME
    wall, cpu, rss, _ = run_child(["curl", "-sS", "-L", "-o", str(out), url])
    t0 = time.perf_counter()
    fd = os.open(out, os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)
    wall += time.perf_counter() - t0
    size = out.stat().st_size
    out.unlink()
    return {"wall": wall, "cpu": cpu, "rss_kb": rss, "size": size}


def round_tinychat(endpoint: str, dest: Path, engine_tree: Path | None = None) -> dict:
    """TinyChat's transfer in a child; `engine_tree`: a folder whose `engine/` package it uses instead."""
    folder = dest / "tinychat"
    cmd = [sys.executable, "-m", "bench.download_speed", "--fetch", endpoint, str(folder)]
    if engine_tree is not None:
        # Not PYTHONPATH: `python -m` puts the current folder ahead of it, which would load this engine/.
        cmd += ["--engine-from", str(engine_tree)]
    _, cpu, _, out = run_child(cmd)
    info = json.loads(out.strip().splitlines()[-1])
    size = (folder / NAME).stat().st_size
    shutil.rmtree(folder)
    wanted = (engine_tree or Path(__file__).resolve().parents[1]) / "engine"
    if Path(info["engine"]).resolve() != wanted.resolve():
        raise SystemExit(f"the child loaded {info['engine']}, not {wanted}")
    return {"wall": info["wall"], "cpu": cpu, "cpu_transfer": info["cpu_transfer"], "rss_kb": info["peak_kb"],
            "rss_before_kb": info["peak_before_kb"], "size": size}


def default_dest(size: int) -> Path:
    shm = Path("/dev/shm")
    if shm.is_dir() and shutil.disk_usage(shm).free > 3 * size:
        return shm
    return Path(tempfile.gettempdir())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mb", type=int, default=2048)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--lines", default="0,125", help="line speeds in MB/s, comma-separated (0: unlimited)")
    ap.add_argument("--dest", type=Path, default=None, help="where both write the download")
    ap.add_argument("--baseline", type=Path, default=None,
                    help="a folder holding another version's engine/ (e.g. `git archive main engine`), "
                         "measured in the same rounds")
    ap.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--fetch", nargs=2, help=argparse.SUPPRESS)
    ap.add_argument("--engine-from", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        return serve(args.serve)
    if args.fetch:
        if args.engine_from:
            sys.path.insert(0, str(args.engine_from))  # before anything imports `engine`
        return fetch(args.fetch[0], Path(args.fetch[1]))
    if shutil.which("curl") is None:
        raise SystemExit("curl is not installed: apt-get install -y curl")

    size = args.size_mb << 20
    dest = args.dest or default_dest(size)
    work = Path(tempfile.mkdtemp(prefix="tinychat-dl-bench-"))
    if shutil.disk_usage(work).free < size + (512 << 20):
        raise SystemExit(f"Not enough free space in {work} for a {args.size_mb} MiB file; pass a smaller --size-mb")
    source = work / NAME
    make_file(source, size)
    server = subprocess.Popen([sys.executable, "-m", "bench.download_speed", "--serve", str(source)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdin is not None and server.stdout is not None
        endpoint = server.stdout.readline().strip()
        url = f"{endpoint}/{REPO}/resolve/main/{NAME}"
        print(f"## Downloads: {size >> 20} MiB from the local fake Hub, written to {dest}\n")
        for line in (int(x) for x in args.lines.split(",")):
            server.stdin.write(f"{line * 1_000_000}\n")
            server.stdin.flush()
            assert server.stdout.readline().strip() == "ok"
            load_before = os.getloadavg()
            sides = ["curl", "TinyChat", *(["baseline"] if args.baseline else [])]
            rows: dict[str, list[dict]] = {side: [] for side in sides}
            for r in range(args.rounds):
                for side in sides[r % len(sides):] + sides[: r % len(sides)]:  # each goes first in turn
                    if side == "curl":
                        row = round_curl(url, dest)
                    else:
                        row = round_tinychat(endpoint, dest, args.baseline if side == "baseline" else None)
                    assert row["size"] == size, row
                    rows[side].append(row)
                    print(f"line {line or 'unlimited'} round {r + 1} {side}: {size / row['wall'] / 1e6:.0f} MB/s, "
                          f"CPU {row['cpu']:.2f} s, peak RSS {row['rss_kb'] / 1024:.0f} MiB", file=sys.stderr)
            print_report(rows, size, line, load_before, os.getloadavg())
    finally:
        if server.stdin:
            server.stdin.close()
        server.wait(30)
        shutil.rmtree(work, ignore_errors=True)


def throughput_ratios(rows: dict[str, list[dict]], side: str, other: str) -> list[float]:
    """`side`'s throughput ÷ `other`'s, round by round (same file: the inverse ratio of their times)."""
    return [o["wall"] / s["wall"] for s, o in zip(rows[side], rows[other], strict=True)]


def listed(ratios: list[float]) -> str:
    return ", ".join(f"{x:.2f}×" for x in ratios)


def print_report(rows: dict[str, list[dict]], size: int, line: int, load_before: tuple, load_after: tuple) -> None:
    def med(side: str, key: str) -> float:
        return statistics.median(r[key] for r in rows[side])

    speed = {s: size / med(s, "wall") / 1e6 for s in rows}
    ratios = throughput_ratios(rows, "TinyChat", "curl")
    what = f"a {line} MB/s line" if line else "an unlimited line (loopback)"
    print(f"### {what}, {len(ratios)} interleaved rounds\n")
    print(f"Load average {load_before[0]:.2f} before, {load_after[0]:.2f} after (2 cores).\n")
    print("| client | MB/s (median) | CPU s (user+sys) | peak RSS |")
    print("|---|---|---|---|")
    for s in rows:
        print(f"| {s} | {speed[s]:.0f} | {med(s, 'cpu'):.2f} | {med(s, 'rss_kb') / 1024:.0f} MiB |")
    before = med("TinyChat", "rss_before_kb") / 1024
    if "baseline" in rows:
        print(f"\nTinyChat ÷ baseline throughput per round: {listed(throughput_ratios(rows, 'TinyChat', 'baseline'))}; "
              f"baseline ÷ curl: {listed(throughput_ratios(rows, 'baseline', 'curl'))}.")
    print(f"\nTinyChat ÷ curl throughput per round: {listed(ratios)} "
          f"(median {statistics.median(ratios):.2f}×, target ≥ 0.8×). TinyChat's CPU is its whole process; "
          f"{med('TinyChat', 'cpu_transfer'):.2f} s of it is the transfer (the rest starts Python and imports "
          f"the HTTP stack). Its peak memory was {before:.0f} MiB before the transfer.\n")


if __name__ == "__main__":
    main()
