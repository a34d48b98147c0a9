"""`tinychat models …` as a user runs it, in a private TINYCHAT_HOME, downloading from the fake Hub
(tests/fakehub.py) with the packaged catalog: list, get (progress, Ctrl+C, resume), import, use,
verify, remove, bench."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.catalog import Catalog
from tests.fakehub import FakeHub
from tests.fixtures.gguf_model import build_cached

ROOT = Path(__file__).resolve().parents[1]
CATALOG = Catalog.load()
Q5 = CATALOG.get("tinyllama-1.1b-chat-v0.4", "Q5_K_M")  # the one level whose hash is checked at download time
Q4 = CATALOG.get("tinyllama-1.1b-chat-v0.4", "Q4_K_M")


def env(home: Path, hub: FakeHub | None = None) -> dict[str, str]:
    e = {**os.environ, "TINYCHAT_HOME": str(home), "HF_HUB_DISABLE_XET": "1"}
    e.pop("HF_TOKEN", None)
    if hub is not None:
        e["HF_ENDPOINT"] = hub.endpoint
    return e


def tinychat(home: Path, *args: str, hub: FakeHub | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "app", "models", *args], cwd=ROOT, env=env(home, hub),
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def model_bytes() -> bytes:
    return build_cached("small", "Q4_K_M", scripted=True).read_bytes()


@pytest.fixture
def hub(model_bytes: bytes):
    """The GGUF repo at the catalog's pinned commit, its Q5_K_M file being a small test model."""
    with FakeHub() as h:
        h.add_repo(Q5.repo, {Q5.files[0].name: model_bytes}, commit=Q5.revision)
        yield h


def test_list_on_a_fresh_install_shows_every_level_and_how_to_get_one(tmp_path):
    r = tinychat(tmp_path, "list")
    assert r.returncode == 0, r.stderr
    for e in CATALOG.levels("tinyllama-1.1b-chat-v0.4", "llama.cpp"):
        assert any(line.split()[:1] == [e.level] and "not installed" in line for line in r.stdout.splitlines())
    assert "tinychat models get LEVEL" in r.stdout


def test_get_downloads_a_level_with_progress_and_then_it_is_installed_and_in_use(tmp_path, hub, model_bytes):
    hub.faults.trickle_bps = len(model_bytes) // 2  # two seconds: long enough for progress reports
    r = tinychat(tmp_path, "get", "q5_k_m", hub=hub)
    assert r.returncode == 0, r.stderr
    assert "TinyLlama 1.1B Chat v0.4 · Q5_K_M is installed" in r.stdout
    # Not a terminal: one line per tenth of each phase.
    assert "% Downloading" in r.stderr and "100 % Checking" in r.stderr
    listed = tinychat(tmp_path, "list").stdout
    assert any(line.startswith(" * Q5_K_M") and "installed" in line for line in listed.splitlines())
    again = tinychat(tmp_path, "get", "Q5_K_M", hub=hub)
    assert "already installed" in again.stdout and hub.served(Q5.files[0].name) == len(model_bytes)


def test_a_level_whose_file_changed_upstream_is_refused_in_one_line(tmp_path, model_bytes):
    with FakeHub() as h:
        h.add_repo(Q4.repo, {Q4.files[0].name: model_bytes}, commit=Q4.revision)  # not the pinned bytes
        r = tinychat(tmp_path, "get", "Q4_K_M", hub=h)
        assert h.served(Q4.files[0].name) == 0
    assert r.returncode == 1 and r.stdout == ""
    error = [line for line in r.stderr.splitlines() if line.startswith("tinychat:")]
    assert len(error) == 1 and error[0].startswith("tinychat: The file changed upstream")


def test_ctrl_c_keeps_what_was_fetched_and_the_next_get_resumes(tmp_path, hub, model_bytes):
    hub.faults.trickle_bps = 64 * 1024
    # A background job's children start with SIGINT ignored (then Python installs no handler); a
    # terminal's do not, so restore the default as a shell in the foreground would.
    proc = subprocess.Popen([sys.executable, "-m", "app", "models", "get", "Q5_K_M"], cwd=ROOT,
                            env=env(tmp_path, hub), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    part = tmp_path / "data" / "models" / "llama.cpp" / Q5.id / (Q5.files[0].name + ".part")
    deadline = time.monotonic() + 60
    while (not part.exists() or part.stat().st_size < 100_000) and time.monotonic() < deadline:
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Download paused. What was downloaded is kept" in err
    kept = part.stat().st_size
    assert kept >= 100_000
    hub.faults.trickle_bps = None
    r = tinychat(tmp_path, "get", "Q5_K_M", hub=hub)
    assert r.returncode == 0, r.stderr
    assert hub.cdn_requests()[-1].range == f"bytes={kept}-"  # only the missing bytes were asked for
    installed = tmp_path / "data" / "models" / "llama.cpp" / Q5.id / Q5.files[0].name
    assert installed.read_bytes() == model_bytes


def test_import_use_verify_and_remove_follow_the_windows_rules(tmp_path):
    a, b = tmp_path / "a.gguf", tmp_path / "b.gguf"
    a.write_bytes(build_cached("small", "Q8_0").read_bytes())
    b.write_bytes(build_cached("small", "Q2_K").read_bytes())
    ra, rb = tinychat(tmp_path, "import", str(a)), tinychat(tmp_path, "import", str(b), "--in-place")
    assert ra.returncode == 0 and rb.returncode == 0, ra.stderr + rb.stderr
    assert "Imported tinychat-test-small · Q8_0" in ra.stdout and "do not move it" in rb.stdout
    id_a, id_b = (r.stdout.rsplit("tinychat models use ", 1)[1].strip("`.\n") for r in (ra, rb))
    assert tinychat(tmp_path, "use", id_a).returncode == 0
    settings = json.loads((tmp_path / "config" / "settings.json").read_text())
    assert settings["model_id"] == id_a and settings["quant"] == "Q8_0"
    assert tinychat(tmp_path, "verify").returncode == 0
    b.write_bytes(b.read_bytes()[:-1] + b"\x01")  # the in-place file changed behind TinyChat's back
    bad = tinychat(tmp_path, "verify")
    assert bad.returncode == 1 and "no longer match what was downloaded" in bad.stdout
    refused = tinychat(tmp_path, "remove", id_a)
    assert refused.returncode == 1
    assert refused.stderr == "tinychat: This model is in use. Switch to another level first.\n"
    removed = tinychat(tmp_path, "remove", id_b)
    assert removed.returncode == 0 and "freed" in removed.stdout and b.exists()
    assert id_b not in tinychat(tmp_path, "list").stdout


@pytest.mark.parametrize("args, says", [
    (("get", "Q1_XS"), "There is no level called Q1_XS. The levels are: Q2_K, Q3_K_M, Q4_K_M"),
    (("use", "F16"), "F16 is not installed. Get it first with `tinychat models get F16`."),
    (("import", "/nonexistent/x.gguf"), "x.gguf: /nonexistent/x.gguf does not exist"),
    (("bench",), "No model is installed yet."),
])
def test_problems_are_one_line_saying_what_to_do(tmp_path, args, says):
    r = tinychat(tmp_path, *args)
    assert r.returncode == 1 and r.stdout == ""
    error = [line for line in r.stderr.splitlines() if line.startswith("tinychat:")]
    assert len(error) == 1 and error[0].startswith(f"tinychat: {says}") and r.stderr.endswith(error[0] + "\n")


def test_bench_measures_the_level_in_use_prints_its_figures_and_a_recommendation(tmp_path):
    f16 = tmp_path / "small.gguf"
    f16.write_bytes(build_cached("small", "F16").read_bytes())
    assert tinychat(tmp_path, "import", str(f16), "--in-place").returncode == 0
    r = tinychat(tmp_path, "bench", timeout=600)
    assert r.returncode == 0, r.stderr
    head, row = r.stdout.splitlines()[:2]
    assert head.split()[:3] == ["level", "gen", "tok/s"] and row.split()[0] == "F16"
    assert "100.0%" in row  # the only level is its own reference
    assert r.stdout.splitlines()[2].startswith("Use F16: it is the fastest level measured here")
    listed = tinychat(tmp_path, "list").stdout
    assert "100.0 % same next word as F16" in listed
