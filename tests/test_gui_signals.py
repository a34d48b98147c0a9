"""The app closes cleanly on Ctrl+C (SIGINT) or SIGTERM from outside."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from tests.fixtures.gguf_model import build_cached


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_terminal_signal_closes_the_window_and_joins_the_engine_thread(tmp_path, sig):
    env = {**os.environ, "TINYCHAT_HOME": str(tmp_path), "QT_QPA_PLATFORM": "offscreen",
           "TINYCHAT_MODEL": str(build_cached("tiny", scripted=True))}
    proc = subprocess.Popen([sys.executable, "-m", "app"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    log = tmp_path / "logs" / "tinychat.log"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (log.exists() and "loaded" in log.read_text()):
            time.sleep(0.1)
        assert log.exists() and "loaded" in log.read_text(), "the app never loaded its model"
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:  # a failed run must not leave the app behind
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "QThread: Destroyed" not in err
    assert f"signal {int(sig)}: closing" in log.read_text()
