"""Downloads across processes: resume after the app is killed, a disk that fills mid-way, and
downloading from a process that set `HF_HUB_OFFLINE=1` at start-up as the app does."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fakehub import FakeHub, gguf_entry, write_catalog
from tests.test_download import model_bytes

REPO = "test/Tiny-GGUF"
FILE = "tiny.q4_k_m.gguf"
ROOT = Path(__file__).resolve().parents[1]

__all__ = ["model_bytes"]  # the shared module-scoped model fixture


@pytest.fixture
def hub(model_bytes: bytes):
    with FakeHub() as h:
        h.commit = h.add_repo(REPO, {FILE: model_bytes})
        yield h


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(HF_HUB_OFFLINE="1", HF_HUB_DISABLE_XET="1", HF_HUB_DISABLE_TELEMETRY="1", PYTHONPATH=str(ROOT))
    env.update(extra)
    return env


def child_args(catalog: Path, root: Path, hub: FakeHub, *extra: str) -> list[str]:
    return [sys.executable, "-m", "tests.download_child", str(catalog), str(root), hub.endpoint, "tiny", "Q4_K_M",
            *extra]


def run_child(args: list[str]) -> tuple[int, dict]:
    done = subprocess.run(args, capture_output=True, text=True, env=child_env(), cwd=ROOT, timeout=60)
    assert done.stdout.strip(), done.stderr
    return done.returncode, json.loads(done.stdout.strip().splitlines()[-1])


def test_download_works_in_a_process_that_started_with_hf_hub_offline(tmp_path, hub, model_bytes):
    catalog = write_catalog(tmp_path / "catalog.json", [gguf_entry(REPO, hub.commit, FILE)])
    code, report = run_child(child_args(catalog, tmp_path / "models", hub))
    assert code == 0, report
    assert report["hf_offline"] is True  # the app's guard was in force ...
    assert report["hf_session_refused"] is True  # ... and still blocks huggingface_hub's own requests
    assert Path(report["path"]).read_bytes() == model_bytes


def test_resume_after_the_process_is_killed_fetches_only_the_missing_bytes(tmp_path, hub, model_bytes):
    catalog = write_catalog(tmp_path / "catalog.json", [gguf_entry(REPO, hub.commit, FILE)])
    root = tmp_path / "models"
    hub.faults.stall_after, hub.faults.stall_s = 400_000, 60.0  # the first process hangs after 400 kB
    child = subprocess.Popen(child_args(catalog, root, hub, "--stall-timeout", "60"), env=child_env(), cwd=ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    part = root / "llama.cpp" / "tiny-q4_k_m" / (FILE + ".part")
    deadline = time.monotonic() + 30
    while not (part.exists() and part.stat().st_size == 400_000):
        assert time.monotonic() < deadline and child.poll() is None, "the child never reached 400 kB"
        time.sleep(0.05)
    child.kill()  # no cleanup, no goodbye: like a crash or a power cut
    child.communicate()
    hub.faults.stall_after = None
    hub.reset_counters()

    code, report = run_child(child_args(catalog, root, hub))  # the app, restarted
    assert code == 0, report
    assert Path(report["path"]).read_bytes() == model_bytes
    (resumed,) = hub.cdn_requests()
    assert resumed.range == "bytes=400000-"
    assert resumed.sent == len(model_bytes) - 400_000


def _can_mount_tmpfs() -> bool:
    if not sys.platform.startswith("linux") or shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"],
                           capture_output=True)
    return probe.returncode == 0


@pytest.mark.skipif(not _can_mount_tmpfs(), reason="needs Linux user namespaces to mount a small tmpfs")
def test_a_disk_that_fills_mid_download_keeps_the_partial_file_for_resume(tmp_path, hub, model_bytes):
    catalog = write_catalog(tmp_path / "catalog.json", [gguf_entry(REPO, hub.commit, FILE)])
    root = tmp_path / "small-disk"
    root.mkdir()
    first, second = tmp_path / "first.json", tmp_path / "second.json"
    py = " ".join(child_args(catalog, root, hub, "--free-space-lie"))
    # Inside a private mount namespace: a 600 KiB disk for a 948 kB model, then the user frees space.
    script = (f"mount -t tmpfs -o size=600k tmpfs {root} && {py} > {first}; "
              f"mount -o remount,size=4m {root} && {py} > {second}")
    done = subprocess.run(["unshare", "-rm", "sh", "-c", script], env=child_env(), cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert second.exists(), done.stderr
    report1, report2 = json.loads(first.read_text()), json.loads(second.read_text())
    assert "disk filled up" in report1["error"] and "kept" in report1["error"]
    kept = report1["part_size"]
    assert 300_000 < kept < len(model_bytes)
    assert "path" in report2, report2
    (_, resumed) = hub.cdn_requests()
    assert resumed.range == f"bytes={kept}-"
    assert resumed.sent == len(model_bytes) - kept
