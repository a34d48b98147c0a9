"""Run many `tinychat-engine` commands in one child process, each with its own stdout, stderr and clock.

`python -m tests.corpus.cli_batch JOBS RESULTS` reads JSON lines `{"id", "argv", "stdin"}` from JOBS and
runs `engine.cli.main(argv)` for each, with file descriptors 1 and 2 pointed at fresh files, so whatever
native code prints (llama.cpp logs, a gdb backtrace after an abort) lands in that job's output. Before
each job it appends `{"id", "started": true}` to RESULTS, after it the job's exit code, output and
seconds: when a job kills or hangs the process, the parent knows which one and starts a new batch
after it. `run_batches` is the parent side: it spreads the jobs over processes with a memory limit.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MEMORY_LIMIT = 4 << 30
JOB_TIMEOUT_S = 10.0


def _outputs(capture_dir: Path, job_id: str) -> tuple[Path, Path]:
    return capture_dir / f"{job_id}.out", capture_dir / f"{job_id}.err"


@contextlib.contextmanager
def _captured(out: Path, err: Path, stdin: str) -> Iterator[None]:
    """Point fds 1 and 2 (and sys.stdin) at the job's own files."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with out.open("wb") as fo, err.open("wb") as fe:
        os.dup2(fo.fileno(), 1)
        os.dup2(fe.fileno(), 2)
        old_stdin, sys.stdin = sys.stdin, io.StringIO(stdin)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            sys.stdin = old_stdin
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def _limit_memory() -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def main(jobs_path: str, results_path: str) -> None:
    """The child: run each job, appending a start line and a result line to `results_path` (outputs go
    next to it, one pair of files per job)."""
    _limit_memory()
    from engine.cli import main as cli_main
    from engine.validate import _verified

    with open(results_path, "a", encoding="utf-8") as results:
        for line in Path(jobs_path).read_text(encoding="utf-8").splitlines():
            job = json.loads(line)
            results.write(json.dumps({"id": job["id"], "started": True}) + "\n")
            results.flush()
            _verified.clear()  # each command checks its file itself, as in a fresh process
            t0 = time.monotonic()
            out, err = _outputs(Path(results_path).parent, job["id"])
            with _captured(out, err, job.get("stdin", "")):
                try:
                    code = cli_main(job["argv"])
                except SystemExit as exc:
                    code = exc.code if isinstance(exc.code, int) else 2
            results.write(json.dumps({
                "id": job["id"], "code": code, "seconds": time.monotonic() - t0,
                "stdout": out.read_text("utf-8", "replace"), "stderr": err.read_text("utf-8", "replace"),
            }) + "\n")
            results.flush()


def _run_one_batch(jobs: list[dict], workdir: Path, n: int) -> dict[str, dict]:
    """Run `jobs` in child processes until each has a result; a job that crashes or hangs its process
    gets a result saying so, and the rest go on in a new process."""
    done: dict[str, dict] = {}
    remaining = list(jobs)
    attempt = 0
    while remaining:
        attempt += 1
        jobs_file, results_file = workdir / f"jobs-{n}-{attempt}.jsonl", workdir / f"results-{n}-{attempt}.jsonl"
        jobs_file.write_text("".join(json.dumps(j) + "\n" for j in remaining), encoding="utf-8")
        results_file.write_text("")
        proc = subprocess.Popen([sys.executable, "-m", "tests.corpus.cli_batch", str(jobs_file), str(results_file)],
                                cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        started, started_at = None, time.monotonic()
        with results_file.open(encoding="utf-8") as results:
            pending = ""
            while True:
                finished = proc.poll() is not None
                pending += results.read()
                *lines, pending = pending.split("\n")  # a long line may still be half written
                for line in lines:
                    record = json.loads(line)
                    if record.get("started"):
                        started, started_at = record["id"], time.monotonic()
                    else:
                        done[record["id"]] = record
                if finished:
                    break
                if started is not None and started not in done and time.monotonic() - started_at > 2 * JOB_TIMEOUT_S:
                    proc.kill()  # a hang: the job is reported below, the rest go on in a new process
                    proc.wait()
                    break
                time.sleep(0.05)
        if started is not None and started not in done:
            out, err = _outputs(workdir, started)
            done[started] = {"id": started, "code": proc.returncode, "seconds": time.monotonic() - started_at,
                             "stdout": out.read_text("utf-8", "replace") if out.exists() else "",
                             "stderr": err.read_text("utf-8", "replace") if err.exists() else "",
                             "crashed": True}
        remaining = [j for j in remaining if j["id"] not in done]
    return done


def run_batches(jobs: list[dict], workdir: Path, processes: int = 2) -> dict[str, dict]:
    """Every job's result, the jobs spread over `processes` child processes running at once."""
    from concurrent.futures import ThreadPoolExecutor

    shares = [jobs[i::processes] for i in range(processes)]
    with ThreadPoolExecutor(processes) as pool:
        parts = pool.map(lambda item: _run_one_batch(item[1], workdir, item[0]), enumerate(shares))
    return {k: v for part in parts for k, v in part.items()}


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
