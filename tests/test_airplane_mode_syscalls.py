"""Airplane mode seen from outside the process: under `strace -f -e trace=network`, a download attempt (and
a raw socket, and a library request) with airplane mode on makes no connect or send system call on an
internet socket, and a listening port on 127.0.0.1 sees no connection. The same child with airplane
mode off shows that strace does see the connection it makes."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.fakehub import gguf_entry, write_catalog

ROOT = Path(__file__).resolve().parents[1]
STRACE = shutil.which("strace") or "strace"  # installed by the Makefile (DEB_PACKAGES)
INTERNET_CALL = re.compile(r"\b(connect|sendto|sendmsg)\(\d+, \{sa_family=AF_INET6?\b")

CHILD = textwrap.dedent('''
    import socket, sys, urllib.request
    from pathlib import Path
    from engine import network_log
    from engine.catalog import Catalog
    from engine.download import TransferSettings
    from engine.models import ModelManager
    from engine.types import DownloadError

    network_log.install()
    airplane, catalog, models, port = sys.argv[1] == "on", Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4])
    network_log.set_airplane(airplane)
    if not airplane:
        socket.create_connection(("127.0.0.1", port)).close()
        print("connected")
        sys.exit(0)
    mm = ModelManager(models, Catalog.load(catalog), endpoint=f"http://127.0.0.1:{port}",
                      settings=TransferSettings(retries=1, backoff_base_s=0.01, margin_bytes=0))
    for attempt in (lambda: mm.ensure_available("tiny", "Q4_K_M"),
                    lambda: socket.create_connection(("127.0.0.1", port)),
                    lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/"),
                    lambda: urllib.request.urlopen("https://huggingface.co/")):
        try:
            attempt()
            print("NOT REFUSED")
        except (DownloadError, OSError) as exc:
            print("refused:", getattr(exc, "message", None) or network_log.refusal_in(exc))
    print("logged refusals:", sum(a.refused for a in network_log.LOG.attempts()))
''')


def run_child(tmp_path: Path, airplane: str, port: int) -> tuple[str, str]:
    catalog = write_catalog(tmp_path / "catalog.json", [gguf_entry("test/Tiny-GGUF", "main", "tiny.q4_k_m.gguf")])
    trace = tmp_path / f"trace-{airplane}.txt"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_DISABLE_XET": "1"}
    done = subprocess.run([STRACE, "-f", "-e", "trace=network", "-o", str(trace), sys.executable, "-c", CHILD,
                           airplane, str(catalog), str(tmp_path / "models"), str(port)],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout, trace.read_text()


@pytest.fixture
def listener():
    s = socket.create_server(("127.0.0.1", 0))
    s.settimeout(0.5)
    yield s
    s.close()


def test_strace_sees_the_childs_connection_when_airplane_mode_is_off(tmp_path, listener):
    out, trace = run_child(tmp_path, "off", listener.getsockname()[1])
    assert out.strip() == "connected"
    assert INTERNET_CALL.search(trace), trace


def test_with_airplane_mode_on_no_internet_socket_call_is_made_and_nobody_connects(tmp_path, listener):
    out, trace = run_child(tmp_path, "on", listener.getsockname()[1])
    lines = out.splitlines()
    assert lines[0].startswith("refused: Airplane mode is on, so TinyChat does not connect to the internet.")
    assert all(line.startswith("refused: Airplane mode is on") for line in lines[1:4]), out
    assert lines[4] == "logged refusals: 3"  # the download stopped before trying: nothing for the hook to refuse
    assert not INTERNET_CALL.search(trace), trace
    with pytest.raises(TimeoutError):
        listener.accept()
